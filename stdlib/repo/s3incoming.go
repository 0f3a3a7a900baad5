package repo

// Uploads that arrive in an S3 prefix (repo.conf's Incoming): a publish copies each
// finished one into DIR/incoming and validates the copy (what is checked is what is
// published, whatever happens to the object meanwhile); the object is deleted only once
// the publish is complete, and only if it was not replaced since it was copied. An
// interrupted publish therefore loses nothing: the next one copies the upload again.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/interp/storage"
)

// s3Uploads lists the finished uploads at the top of an incoming prefix.
func s3Uploads(ctx context.Context, inc storage.Store) ([]storage.Info, error) {
	var ups []storage.Info
	err := inc.List(ctx, "", func(i storage.Info) error {
		if !strings.Contains(i.Name, "/") && uploadName(i.Name) {
			ups = append(ups, i)
		}
		return nil
	})
	sort.Slice(ups, func(i, j int) bool { return ups[i].Name < ups[j].Name })
	return ups, err
}

// fetchUploads copies the uploads of the S3 incoming prefix into DIR/incoming.
func (p *publisher) fetchUploads(ctx context.Context) error {
	if p.st.inc == nil {
		return nil
	}
	ups, err := s3Uploads(ctx, p.st.inc)
	if err != nil {
		return err
	}
	local := filepath.Join(p.dir, IncomingDir)
	if err := os.MkdirAll(local, 0o755); err != nil {
		return err
	}
	stamps := make([]string, len(ups))
	err = parallel.ForEach(ctx, len(ups), 8, func(ctx context.Context, i int) error {
		var err error
		stamps[i], err = fetchUpload(ctx, p.st.inc, ups[i].Name, filepath.Join(p.dir, PrivateDir), filepath.Join(local, ups[i].Name))
		return err
	})
	if err != nil {
		return fmt.Errorf("copy uploads from %s: %w", p.st.inc, err)
	}
	p.fetched = make(map[string]string, len(ups))
	for i, u := range ups {
		if stamps[i] != "" {
			p.fetched[u.Name] = stamps[i]
		}
	}
	return nil
}

// fetchUpload downloads one upload to a temporary file in tmpDir (DIR/private, where a
// killed publish's leftovers are removed by the next: removeTemps), then renames it to dst,
// and returns the stamp of the object it read ("" when it was deleted meanwhile).
func fetchUpload(ctx context.Context, inc storage.Store, name, tmpDir, dst string) (string, error) {
	r, info, err := inc.Open(ctx, name)
	if errors.Is(err, storage.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer r.Close()
	f, err := os.CreateTemp(tmpDir, "."+name+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return info.Stamp, nil
}

// cleanIncoming deletes the S3 uploads that the publish consumed (their copies left
// DIR/incoming) and that were not replaced since they were copied. What it cannot delete
// is copied again by the next publish, and found unchanged.
func (p *publisher) cleanIncoming() {
	ctx := context.Background()
	for name, stamp := range p.fetched {
		if _, err := os.Lstat(filepath.Join(p.dir, IncomingDir, name)); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if info, err := p.st.inc.Stat(ctx, name); err == nil && info.Stamp == stamp {
			p.st.inc.Delete(ctx, name)
		}
	}
}

// watcher returns what Watch looks at: a description of the finished uploads, "" when
// there are none (in DIR/incoming, or in the S3 incoming prefix).
func watcher(ctx context.Context, dir string, cfg Config) (func() (string, error), error) {
	if cfg.Incoming == "" {
		inc := filepath.Join(dir, IncomingDir)
		return func() (string, error) { return snapshot(inc) }, nil
	}
	inc, err := storage.NewS3(ctx, cfg.Incoming)
	if err != nil {
		return nil, err
	}
	return func() (string, error) {
		ups, err := s3Uploads(ctx, inc)
		var parts []string
		for _, u := range ups {
			parts = append(parts, u.Name+"\x00"+strconv.FormatInt(u.Size, 10)+"\x00"+u.Stamp)
		}
		return strings.Join(parts, "\n"), err
	}, nil
}
