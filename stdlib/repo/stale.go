package repo

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// removeTemps deletes the temporary files (".NAME.tmp-*", interp/atomicfile) that a publish
// killed before it committed them left in public/dists/, public/, private/ and rejected/.
// Only a publish holding the repository's lock may call it: no other writer is running, so
// every such file is stale.
func removeTemps(dir string) error {
	for _, d := range []string{filepath.Join(PublicDir, "dists"), PublicDir, PrivateDir, RejectedDir} {
		root := filepath.Join(dir, d)
		recurse := d != PublicDir // public/pool is large and holds no temporary files
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			switch {
			case err != nil:
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			case e.IsDir():
				if p != root && !recurse {
					return filepath.SkipDir
				}
			case strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-"):
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
