package version

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
)

func TestReadFile(t *testing.T) {
	tests := []struct {
		name, content string
		want          string // the version; "" means an error
		errHas        []string
	}{
		{name: "plain", content: "1.4.2\n", want: "1.4.2"},
		{name: "no newline", content: "1.4.2", want: "1.4.2"},
		{name: "epoch and revision", content: "2:1.4.2-3\n", want: "2:1.4.2-3"},
		{name: "surrounding space", content: "\n  1.0 \r\n\n", want: "1.0"},
		{name: "empty", content: "", errHas: []string{"VERSION", "empty"}},
		{name: "blank", content: " \n\n", errHas: []string{"VERSION", "empty"}},
		{name: "two lines", content: "1.0\n1.1\n", errHas: []string{"VERSION", `"1.0\n1.1"`, "one line"}},
		{name: "garbage", content: "hello world\n", errHas: []string{"VERSION", `"hello world"`, "embedded spaces"}},
		{name: "letters", content: "v1.0\n", errHas: []string{"VERSION", `"v1.0"`, "does not start with digit"}},
		{name: "empty revision", content: "1.0-\n", errHas: []string{"VERSION", `"1.0-"`, "revision number is empty"}},
		{name: "bad epoch", content: "x:1.0\n", errHas: []string{"VERSION", `"x:1.0"`, "epoch"}},
		{name: "underscore", content: "1.0_1\n", errHas: []string{"VERSION", `"1.0_1"`, "invalid character"}},
		{name: "huge", content: strings.Repeat("1", maxFileSize+1), errHas: []string{"VERSION", "larger than"}},
		{name: "binary", content: "\x00\x01", errHas: []string{"VERSION", `"\x00\x01"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := afero.NewMemMapFs()
			if err := afero.WriteFile(fsys, "VERSION", []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := ReadFile(fsys, "VERSION")
			if tt.want != "" {
				if err != nil || v.String() != tt.want {
					t.Fatalf("ReadFile = %s, %v; want %s", v, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadFile = %s; want an error", v)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			// A bad VERSION is never rewritten.
			if _, _, err := BumpFile(fsys, "VERSION", Patch); err == nil {
				t.Errorf("BumpFile accepted the bad file")
			}
			if got, _ := afero.ReadFile(fsys, "VERSION"); string(got) != tt.content {
				t.Errorf("BumpFile changed the bad file to %q", got)
			}
		})
	}
	if _, err := ReadFile(afero.NewMemMapFs(), "VERSION"); err == nil || !strings.Contains(err.Error(), "VERSION") {
		t.Errorf("ReadFile of a missing file: %v", err)
	}
}

// filesystems returns the kinds of afero.Fs BumpFile must work on, each with a VERSION file
// holding content, and the OS directory behind it ("" for memory).
func filesystems(t *testing.T, content string) map[string]struct {
	fsys afero.Fs
	path string
	dir  string
} {
	t.Helper()
	out := map[string]struct {
		fsys afero.Fs
		path string
		dir  string
	}{}
	mem := afero.NewMemMapFs()
	afero.WriteFile(mem, "proj/VERSION", []byte(content), 0o640)
	out["mem"] = struct {
		fsys afero.Fs
		path string
		dir  string
	}{mem, "proj/VERSION", ""}
	for _, kind := range []string{"os", "basepath"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		var fsys afero.Fs = afero.NewOsFs()
		path := filepath.Join(dir, "VERSION")
		if kind == "basepath" {
			fsys, path = afero.NewBasePathFs(afero.NewOsFs(), dir), "VERSION"
		}
		out[kind] = struct {
			fsys afero.Fs
			path string
			dir  string
		}{fsys, path, dir}
	}
	return out
}

func TestBumpFile(t *testing.T) {
	for kind, fs := range filesystems(t, "2:1.9-3\n") {
		t.Run(kind, func(t *testing.T) {
			steps := []struct {
				part     Part
				old, new string
			}{
				{Revision, "2:1.9-3", "2:1.9-4"},
				{Minor, "2:1.9-4", "2:1.10"},
				{Patch, "2:1.10", "2:1.10.1"},
				{Major, "2:1.10.1", "2:2.0.0"},
			}
			for _, s := range steps {
				old, new, err := BumpFile(fs.fsys, fs.path, s.part)
				if err != nil || old.String() != s.old || new.String() != s.new {
					t.Fatalf("BumpFile(%s) = %s, %s, %v; want %s, %s", s.part, old, new, err, s.old, s.new)
				}
				data, err := afero.ReadFile(fs.fsys, fs.path)
				if err != nil || string(data) != s.new+"\n" {
					t.Fatalf("VERSION = %q, %v; want %q", data, err, s.new+"\n")
				}
			}
			fi, err := fs.fsys.Stat(fs.path)
			if err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("VERSION mode = %v, %v; want 0640 kept", fi.Mode(), err)
			}
			names, _ := afero.Glob(fs.fsys, filepath.Join(filepath.Dir(fs.path), ".VERSION.tmp-*"))
			if len(names) != 0 {
				t.Errorf("temporary files left: %v", names)
			}
			if _, _, err := BumpFile(fs.fsys, fs.path, "micro"); err == nil || !strings.Contains(err.Error(), "micro") {
				t.Errorf("BumpFile(micro) error = %v", err)
			}
			if fs.dir != "" {
				if _, err := os.Stat(filepath.Join(fs.dir, ".VERSION.lock")); err != nil {
					t.Errorf("no lock file on an OS filesystem: %v", err)
				}
			} else if ok, _ := afero.Exists(fs.fsys, "proj/.VERSION.lock"); ok {
				t.Errorf("lock file created on a memory filesystem")
			}
		})
	}
}

// TestBumpFileKilledWriter simulates a writer killed between creating its temporary file and
// renaming it: the old version stays, and the next bump succeeds and cleans up.
func TestBumpFileKilledWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "VERSION")
	os.WriteFile(path, []byte("1.0.0\n"), 0o644)
	stale := filepath.Join(dir, ".VERSION.tmp-12345")
	os.WriteFile(stale, []byte("9.9"), 0o600) // half-written, never renamed
	fsys := afero.NewOsFs()
	if v, err := ReadFile(fsys, path); err != nil || v.String() != "1.0.0" {
		t.Fatalf("ReadFile after a killed writer = %s, %v; want 1.0.0", v, err)
	}
	if _, new, err := BumpFile(fsys, path, Patch); err != nil || new.String() != "1.0.1" {
		t.Fatalf("BumpFile = %s, %v; want 1.0.1", new, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there: %v", err)
	}
}

// TestBumpFileKill9 kills (SIGKILL) a process in the middle of bumping, again and again: the
// file always holds a valid version, a bump after that succeeds and leaves no temporary file.
func TestBumpFileKill9(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "VERSION")
	if err := os.WriteFile(path, []byte("1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBumpFileHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"=os:"+dir+":1000000")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		out.Read(buf) // the first bump is done: the helper is in its loop
		time.Sleep(time.Duration(5+7*i) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if _, err := ReadFile(afero.NewOsFs(), path); err != nil {
			t.Fatalf("after kill %d: %v", i, err)
		}
	}
	before, err := ReadFile(afero.NewOsFs(), path)
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := filepath.Glob(filepath.Join(dir, ".VERSION.tmp-*"))
	t.Logf("after 5 kills: VERSION %s, %d temporary file(s) left", before, len(stale))
	if old, _, err := BumpFile(afero.NewOsFs(), path, Patch); err != nil || Compare(old, before) != 0 {
		t.Fatalf("BumpFile after the kills: %s, %v; want old %s", old, err, before)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".VERSION.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestBumpFileReadOnly(t *testing.T) {
	mem := afero.NewMemMapFs()
	afero.WriteFile(mem, "VERSION", []byte("1.0\n"), 0o644)
	if _, _, err := BumpFile(afero.NewReadOnlyFs(mem), "VERSION", Minor); err == nil {
		t.Fatal("BumpFile on a read-only filesystem succeeded")
	}
	if data, _ := afero.ReadFile(mem, "VERSION"); string(data) != "1.0\n" {
		t.Errorf("VERSION = %q", data)
	}
}

// TestBumpFileGoroutines bumps one file on a memory filesystem from several goroutines sharing
// a Mutex.
func TestBumpFileGoroutines(t *testing.T) {
	fsys := afero.NewMemMapFs()
	afero.WriteFile(fsys, "VERSION", []byte("1.0\n"), 0o644)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				if _, _, err := BumpFileWith(fsys, "VERSION", Revision, BumpOptions{Mutex: &mu}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if v, err := ReadFile(fsys, "VERSION"); err != nil || v.String() != "1.0-100" {
		t.Errorf("after 100 bumps: %s, %v; want 1.0-100", v, err)
	}
}

const helperEnv = "UPDS_VERSION_BUMP_HELPER"

// TestBumpFileProcesses runs two OS processes that bump the same VERSION file 50 times each,
// one through afero.OsFs and one through an afero.BasePathFs: no increment may be lost.
func TestBumpFileProcesses(t *testing.T) {
	const perProcess = 50
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("3:1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for _, kind := range []string{"os", "basepath"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBumpFileHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+kind+":"+dir+":"+strconv.Itoa(perProcess))
		out := new(strings.Builder)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	seen := map[string]bool{}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
		for _, line := range strings.Split(outs[i].String(), "\n") {
			if v, ok := strings.CutPrefix(line, "bumped "); ok {
				if seen[v] {
					t.Errorf("version %s produced twice", v)
				}
				seen[v] = true
			}
		}
	}
	want := fmt.Sprintf("3:1.0.%d", 2*perProcess)
	if v, err := ReadFile(afero.NewOsFs(), filepath.Join(dir, "VERSION")); err != nil || v.String() != want {
		t.Errorf("after %d bumps: %s, %v; want %s", 2*perProcess, v, err, want)
	}
	if len(seen) != 2*perProcess {
		t.Errorf("%d distinct versions reported; want %d", len(seen), 2*perProcess)
	}
}

// TestBumpFileHelper is the child process of TestBumpFileProcesses.
func TestBumpFileHelper(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for TestBumpFileProcesses")
	}
	kind, rest, _ := strings.Cut(spec, ":")
	dir, count, _ := strings.Cut(rest, ":")
	n, _ := strconv.Atoi(count)
	var fsys afero.Fs = afero.NewOsFs()
	path := filepath.Join(dir, "VERSION")
	if kind == "basepath" {
		fsys, path = afero.NewBasePathFs(afero.NewOsFs(), dir), "VERSION"
	}
	for range n {
		_, new, err := BumpFile(fsys, path, Patch)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("bumped %s\n", new)
	}
}
