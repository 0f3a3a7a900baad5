package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelloWheelsUsesSystemPython: examples/hello's wheels task builds its wheel with the
// interpreter venv() uses (/usr/bin/python3), also when another python3 comes first on PATH
// (pyenv's, without the wheel package).
func TestHelloWheelsUsesSystemPython(t *testing.T) {
	need(t, "/usr/bin/python3")
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", "../../examples/hello/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy examples/hello: %v\n%s", err, out)
	}
	wheels, _ := filepath.Glob(filepath.Join(dir, "wheels", "greeting-*.whl"))
	for _, w := range wheels {
		os.Remove(w)
	}
	bin := t.TempDir()
	fake := "#!/bin/sh\necho \"error: invalid command 'bdist_wheel'\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "python3"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(updsBin, "-C", dir, "--progress=none", "run", "wheels")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "bdist_wheel") {
		t.Fatalf("upds run wheels with another python3 first on PATH: %v\n%s", err, out)
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "wheels", "greeting-*.whl")); len(got) != 1 {
		t.Fatalf("wheels/ after upds run wheels: %v", got)
	}
}
