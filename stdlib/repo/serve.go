package repo

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// IdleTimeout is how long `upds repo serve` keeps an idle keep-alive connection open (nginx's
// keepalive_timeout is 75 s): idle clients do not hold the server's descriptors for good.
const IdleTimeout = time.Minute

// NewServer is an HTTP server for h with the timeouts a server on a network needs: a client
// has 10 s to send its request headers, and an idle keep-alive connection is closed after
// idle (IdleTimeout when 0). Responses have no time limit: a pool file may be large and the
// link slow.
func NewServer(h http.Handler, idle time.Duration) *http.Server {
	if idle <= 0 {
		idle = IdleTimeout
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle}
}

// Handler serves DIR/public over HTTP: dists/, pool/, key.asc and extra files. Nothing
// outside public/ is reachable (the files are opened through an os.Root, so neither
// ".." nor symlinks escape: what is not inside public/ is not found), hidden names (temporary
// files) are not served, and directories are not listed.
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
		// A symlink out of public/ is an error of os.Root, which the file server would
		// answer with 500: whatever cannot be opened inside public/ is not found.
		if fi, err := root.Stat(strings.TrimPrefix(p, "/")); err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}), nil
}
