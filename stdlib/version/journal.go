package version

// Transactions over the project's version state (VERSION, upds.lock): a run either completes,
// or leaves the files as they were when it began — after a failure, an interrupt, or a kill.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp/atomicfile"
)

// LockEnv is the environment variable through which a run tells the upds processes it starts
// (sh("upds run ...")) which transaction lock it holds: they join its transaction instead of
// waiting for the lock forever.
const LockEnv = "UPDS_RUN_LOCK"

// Transaction keeps files as they were when it began, in a journal on disk, until Commit
// (which drops the journal) or Rollback (which puts the files back). A process killed in
// between leaves the journal, and the next Begin or Recover puts the files back. One
// transaction at a time holds a project's lock; Begin waits for it.
type Transaction struct {
	lock    *os.File // nil for a nested transaction
	lockDir string
	root    string
	saved   []savedFile
}

// savedFile is a file as it was when the transaction began.
type savedFile struct {
	Path    string      `json:"path"` // relative to the root
	Absent  bool        `json:"absent,omitempty"`
	Content []byte      `json:"content,omitempty"`
	Mode    fs.FileMode `json:"mode,omitempty"`
}

// journal is the file that keeps the saved files while a transaction runs.
type journal struct {
	PID     int         `json:"pid"`
	Command string      `json:"command"`
	Started time.Time   `json:"started"`
	Files   []savedFile `json:"files"`
}

// TxOptions adjusts Begin and Recover.
type TxOptions struct {
	// Dir holds the journal and the lock ("journal", "run.lock"), relative to the root
	// (default ".upds").
	Dir string
	// Command says what runs ("upds run release"), for whoever waits for the lock.
	Command string
	// Inherited is the value of LockEnv in the caller's environment: when it names this
	// project's lock and the lock is held, the transaction is nested in the one holding it
	// and does nothing of its own.
	Inherited string
	// Waiting is called once when another transaction holds the lock, with what it says of
	// itself ("pid 1234, upds run release, since 15:04:05").
	Waiting func(holder string)
}

// Restored is a file put back as it was.
type Restored struct {
	Path string
	// Left is what the unfinished run left (nil: no file), Back what the file holds again.
	Left, Back []byte
}

// Begin starts a transaction over files (paths relative to root, on the operating system's
// file system): it takes the project's lock (waiting while another transaction holds it,
// until ctx is done), puts back the files of a transaction whose process died (reported as
// Restored), and records the files as they are now.
func Begin(ctx context.Context, root string, files []string, opt TxOptions) (*Transaction, []Restored, error) {
	t, restored, err := lock(ctx, root, opt)
	if err != nil || t.lock == nil {
		return t, restored, err
	}
	j := journal{PID: os.Getpid(), Command: opt.Command, Started: time.Now().UTC()}
	for _, f := range files {
		s, err := save(root, f)
		if err != nil {
			t.unlock()
			return nil, restored, err
		}
		j.Files = append(j.Files, s)
	}
	data, err := json.MarshalIndent(j, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(nil, t.journalPath(), append(data, '\n'), 0o644)
	}
	if err != nil {
		t.unlock()
		return nil, restored, fmt.Errorf("begin: journal: %w", err)
	}
	t.saved = j.Files
	return t, restored, nil
}

// Recover puts back the files of a transaction whose process died, waiting while another
// transaction runs. Commands that change the files outside a run (upds bump) call it first.
func Recover(ctx context.Context, root string, opt TxOptions) ([]Restored, error) {
	t, restored, err := lock(ctx, root, opt)
	if err == nil {
		t.unlock()
	}
	return restored, err
}

// Env is the environment entry for the processes the transaction's run starts (see LockEnv).
func (t *Transaction) Env() string {
	return LockEnv + "=" + filepath.Join(t.lockDir, "run.lock")
}

// Commit ends the transaction and keeps the files as they are.
func (t *Transaction) Commit() error {
	if t.lock == nil {
		return nil
	}
	defer t.unlock()
	return t.dropJournal()
}

// Rollback ends the transaction and puts the files back as they were when it began. When a
// file cannot be put back the journal stays, and the next Begin or Recover tries again.
func (t *Transaction) Rollback() ([]Restored, error) {
	if t.lock == nil {
		return nil, nil
	}
	defer t.unlock()
	restored, err := restore(t.root, t.saved)
	if err != nil {
		return restored, err
	}
	return restored, t.dropJournal()
}

// lock takes the project's transaction lock and recovers what a dead holder left.
func lock(ctx context.Context, root string, opt TxOptions) (*Transaction, []Restored, error) {
	dir := opt.Dir
	if dir == "" {
		dir = ".upds"
	}
	t := &Transaction{root: root, lockDir: filepath.Join(root, dir)}
	if err := os.MkdirAll(t.lockDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	lockPath := filepath.Join(t.lockDir, "run.lock")
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	got, err := tryFlock(f)
	if err == nil && !got && opt.Inherited == lockPath {
		f.Close()
		return t, nil, nil // nested in the run that holds the lock: it journals and restores
	}
	for waited := false; err == nil && !got; {
		if !waited && opt.Waiting != nil {
			opt.Waiting(t.holder())
		}
		waited = true
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(200 * time.Millisecond):
			got, err = tryFlock(f)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("begin: lock %s: %w", lockPath, err)
	}
	t.lock = f
	restored, err := t.recoverDead()
	if err != nil {
		t.unlock()
		return nil, restored, err
	}
	return t, restored, nil
}

func (t *Transaction) journalPath() string { return filepath.Join(t.lockDir, "journal") }

// readJournal reads the journal; ok is false when there is none.
func (t *Transaction) readJournal() (j journal, ok bool, err error) {
	data, err := os.ReadFile(t.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return j, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &j)
	}
	if err != nil {
		return j, false, fmt.Errorf("%s: %w (it keeps the files an unfinished run changed: put them back by hand, then remove it)", t.journalPath(), err)
	}
	return j, true, nil
}

// holder describes the transaction that holds the lock, from its journal.
func (t *Transaction) holder() string {
	j, ok, err := t.readJournal()
	if err != nil || !ok {
		return "another upds run"
	}
	return fmt.Sprintf("pid %d, %s, since %s", j.PID, j.Command, j.Started.Local().Format("15:04:05"))
}

// recoverDead puts back the files of a journal left by a dead holder (the lock is ours, so
// its holder is gone), then drops the journal.
func (t *Transaction) recoverDead() ([]Restored, error) {
	j, ok, err := t.readJournal()
	if err != nil || !ok {
		return nil, err
	}
	restored, err := restore(t.root, j.Files)
	if err != nil {
		return restored, err
	}
	return restored, t.dropJournal()
}

func (t *Transaction) dropJournal() error {
	if err := os.Remove(t.journalPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("end the transaction: %w", err)
	}
	return atomicfile.SyncDir(t.lockDir)
}

func (t *Transaction) unlock() {
	if t.lock != nil {
		t.lock.Close() // releases the flock
		t.lock = nil
	}
}

// save reads a file as it is now.
func save(root, path string) (savedFile, error) {
	s := savedFile{Path: path}
	p := filepath.Join(root, path)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		s.Absent = true
		return s, nil
	}
	if err == nil {
		s.Mode = fi.Mode().Perm()
		s.Content, err = os.ReadFile(p)
	}
	if err != nil {
		return s, fmt.Errorf("begin: %w", err)
	}
	return s, nil
}

// restore puts back every saved file that differs from what is there now, atomically.
func restore(root string, files []savedFile) ([]Restored, error) {
	var out []Restored
	for _, s := range files {
		p := filepath.Join(root, s.Path)
		cur, err := os.ReadFile(p)
		exists := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return out, fmt.Errorf("restore %s: %w", s.Path, err)
		}
		switch {
		case s.Absent && !exists, !s.Absent && exists && string(cur) == string(s.Content):
			continue
		case s.Absent:
			err = os.Remove(p)
		default:
			err = atomicfile.WriteFile(afero.NewOsFs(), p, s.Content, s.Mode)
		}
		if err != nil {
			return out, fmt.Errorf("restore %s: %w", s.Path, err)
		}
		r := Restored{Path: s.Path, Back: s.Content}
		if exists {
			r.Left = cur
		}
		out = append(out, r)
	}
	return out, nil
}
