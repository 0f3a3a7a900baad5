package repo

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Handler serves DIR/public over HTTP: dists/, pool/, key.asc and extra files. Nothing
// outside public/ is reachable (the files are opened through an os.Root, so neither
// ".." nor symlinks escape), hidden names (temporary files) are not served, and
// directories are not listed.
func Handler(dir string) (http.Handler, error) {
	if cfg, err := ReadConfig(dir); err == nil && cfg.Storage != "" {
		return nil, fmt.Errorf("%s is published to %s: apt reads it there, not from this machine", dir, cfg.Storage)
	}
	root, err := os.OpenRoot(filepath.Join(dir, PublicDir))
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(root.FS())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		for _, el := range strings.Split(p, "/") {
			if strings.HasPrefix(el, ".") {
				http.NotFound(w, r)
				return
			}
		}
		if strings.HasSuffix(p, "/") && p != "/" {
			http.NotFound(w, r)
			return
		}
		if p == "/" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("upds apt repository: see dists/ and key.asc\n"))
			return
		}
		if fi, err := root.Stat(strings.TrimPrefix(p, "/")); err == nil && fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}), nil
}
