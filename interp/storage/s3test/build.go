package s3test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Module and Version name the SeaweedFS source the server is built from. `go install`
// refuses the module (its go.mod has replace directives), so Binary downloads it with
// `go mod download` and builds ./weed inside a writable copy.
const (
	Module  = "github.com/seaweedfs/seaweedfs"
	Version = "v0.0.0-20261109003541-7506e5f91cd6"
)

// CacheEnv names the environment variable that overrides DefaultCacheDir.
const CacheEnv = "UPDS_S3TEST_CACHE"

// WeedEnv names the environment variable that names a weed binary to use instead of
// building one.
const WeedEnv = "UPDS_S3TEST_WEED"

// DefaultCacheDir holds the built weed binary, weed-VERSION, once per machine.
const DefaultCacheDir = "/var/cache/upds-s3test"

func cacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return DefaultCacheDir
}

// Binary returns the path of the weed binary of Version, building it first when the cache
// has none. Concurrent processes build it once: the build runs under an exclusive flock
// of weed-VERSION.lock, and the binary is renamed into place whole. A cold build downloads
// the module and its dependencies through the Go module proxy and compiles them: minutes
// (see the package comment). logf reports progress; it may be nil.
func Binary(ctx context.Context, logf func(format string, args ...any)) (string, error) {
	if p := os.Getenv(WeedEnv); p != "" {
		return p, nil
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir := cacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("s3test: cache: %w", err)
	}
	bin := filepath.Join(dir, "weed-"+Version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	lock, err := os.OpenFile(bin+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("s3test: cache lock: %w", err)
	}
	defer lock.Close()
	if err := flock(ctx, lock); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process built it while this one waited
	}
	start := time.Now()
	logf("s3test: building SeaweedFS %s into %s (once per machine: several minutes)", Version, bin)
	if err := build(ctx, dir, bin); err != nil {
		return "", err
	}
	logf("s3test: SeaweedFS built in %s", time.Since(start).Round(time.Second))
	return bin, nil
}

// flock waits for an exclusive lock on f, giving up when ctx ends.
func flock(ctx context.Context, f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("s3test: lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("s3test: waiting for %s (another process builds SeaweedFS): %w", f.Name(), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// build downloads the module, copies it to a writable directory and builds ./weed to bin.
// The compiler's cache is a directory of its own, removed after a successful build (it
// holds gigabytes that nothing else uses); the downloaded modules stay in GOMODCACHE.
func build(ctx context.Context, dir, bin string) error {
	goTool, err := goBinary()
	if err != nil {
		return err
	}
	work := filepath.Join(dir, "build-"+Version)
	src := filepath.Join(work, "src")
	gocache := filepath.Join(work, "gocache")
	logPath := filepath.Join(work, "build.log")
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false", "CGO_ENABLED=0",
		"GOCACHE="+gocache, "GOTOOLCHAIN=local")
	run := func(dir string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir, cmd.Env, cmd.Stderr = dir, env, log
		fmt.Fprintf(log, "$ go %s\n", strings.Join(args, " "))
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("s3test: go %s: %v; last lines of %s:\n%s", strings.Join(args, " "), err, logPath, tail(logPath, 20))
		}
		return out, nil
	}
	out, err := run(work, "mod", "download", "-json", Module+"@"+Version)
	if err != nil {
		return err
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("s3test: go mod download %s@%s: %s%v", Module, Version, mod.Error, err)
	}
	if err := copyTree(mod.Dir, src); err != nil {
		return fmt.Errorf("s3test: copy the module source: %w", err)
	}
	tmp := bin + ".tmp"
	if _, err := run(src, "build", "-trimpath", "-o", tmp, "./weed"); err != nil {
		return err
	}
	if err := os.Rename(tmp, bin); err != nil {
		return err
	}
	os.RemoveAll(src)
	return os.RemoveAll(gocache)
}

// goBinary finds the go command: on PATH, else the one of the toolchain running the test.
func goBinary() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "", errors.New("s3test: the go command is needed to build SeaweedFS and is not on PATH")
	}
	return p, nil
}

// copyTree copies the regular files and directories under from (the read-only module
// cache) to to, writable.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
