package venv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkRelocate measures relocating (rewrite, strip check, mode normalisation and the full
// staging-path scan) a venv-sized tree: UPDS_VENV_CORPUS names a venv directory, e.g. the one
// bench/make-venv-corpus.sh writes (bench/out/corpus/var/virtualenvs/hello: 247 MB, 17k entries).
// The tree is copied before each iteration, outside the timing.
func BenchmarkRelocate(b *testing.B) {
	src := os.Getenv("UPDS_VENV_CORPUS")
	if src == "" {
		b.Skip("set UPDS_VENV_CORPUS to a venv directory")
	}
	tmp := b.TempDir()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		root := filepath.Join(tmp, "v")
		os.RemoveAll(root)
		if out, err := exec.Command("cp", "-a", src, root).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		b.StartTimer()
		r := &relocator{root: root, into: "/var/virtualenvs/hello", python: "/usr/bin/python3.11", forbidden: []string{root}}
		if err := r.run(); err != nil {
			b.Fatal(err)
		}
	}
}
