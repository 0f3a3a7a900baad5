package version

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func txProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("1.0\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	return dir
}

var txFiles = []string{"VERSION", LockFile}

// TestTransactionRollback: the files are put back (the lock file, absent at the start, is
// removed again), with their mode; the journal is gone.
func TestTransactionRollback(t *testing.T) {
	dir := txProject(t)
	tx, restored, err := Begin(context.Background(), dir, txFiles, TxOptions{Command: "test"})
	if err != nil || len(restored) != 0 {
		t.Fatalf("Begin: %v %v", restored, err)
	}
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("1.1\n"), 0o600)
	os.WriteFile(filepath.Join(dir, LockFile), []byte("x 1.1 "+key('a')+"\n"), 0o644)
	restored, err = tx.Rollback()
	if err != nil || len(restored) != 2 {
		t.Fatalf("Rollback: %v %v", restored, err)
	}
	if string(restored[0].Left) != "1.1\n" || string(restored[0].Back) != "1.0\n" || restored[1].Back != nil {
		t.Errorf("restored: %+v", restored)
	}
	if got := readString(t, filepath.Join(dir, "VERSION")); got != "1.0\n" {
		t.Errorf("VERSION after the rollback: %q", got)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "VERSION")); fi.Mode().Perm() != 0o640 {
		t.Errorf("VERSION's mode after the rollback: %v", fi.Mode())
	}
	if got := readString(t, filepath.Join(dir, LockFile)); got != "<absent>" {
		t.Errorf("upds.lock after the rollback: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, ".upds", "journal")); !os.IsNotExist(err) {
		t.Errorf("the journal is still there: %v", err)
	}
}

// TestTransactionCommit keeps the changes and drops the journal; a later Recover does nothing.
func TestTransactionCommit(t *testing.T) {
	dir := txProject(t)
	tx, _, err := Begin(context.Background(), dir, txFiles, TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("1.1\n"), 0o644)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if restored, err := Recover(context.Background(), dir, TxOptions{}); err != nil || len(restored) != 0 {
		t.Fatalf("Recover after a commit: %v %v", restored, err)
	}
	if got := readString(t, filepath.Join(dir, "VERSION")); got != "1.1\n" {
		t.Errorf("VERSION after the commit: %q", got)
	}
}

const txHelperEnv = "UPDS_VERSION_TX_HELPER"

// TestTransactionKill9: a process that began a transaction and changed VERSION is killed with
// SIGKILL; the next Begin waits for nothing, puts VERSION back and says so.
func TestTransactionKill9(t *testing.T) {
	dir := txProject(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestTransactionHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), txHelperEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for readString(t, filepath.Join(dir, "VERSION")) != "9.9\n" {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the helper did not change VERSION")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	var waited string
	tx, restored, err := Begin(context.Background(), dir, txFiles, TxOptions{Waiting: func(h string) { waited = h }})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Commit()
	if waited != "" {
		t.Errorf("waited for %q after the holder died", waited)
	}
	if len(restored) != 1 || restored[0].Path != "VERSION" || string(restored[0].Left) != "9.9\n" {
		t.Fatalf("restored: %+v", restored)
	}
	if got := readString(t, filepath.Join(dir, "VERSION")); got != "1.0\n" {
		t.Errorf("VERSION after the recovery: %q", got)
	}
}

// TestTransactionHelper is the process TestTransactionKill9 kills.
func TestTransactionHelper(t *testing.T) {
	dir := os.Getenv(txHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestTransactionKill9")
	}
	if _, _, err := Begin(context.Background(), dir, txFiles, TxOptions{Command: "helper"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("9.9\n"), 0o644)
	time.Sleep(time.Minute)
}

// TestTransactionWaits: a second Begin waits for the first transaction, says for whom, and
// gives up when its context ends; a nested one (LockEnv) joins without waiting.
func TestTransactionWaits(t *testing.T) {
	dir := txProject(t)
	first, _, err := Begin(context.Background(), dir, txFiles, TxOptions{Command: "upds run release"})
	if err != nil {
		t.Fatal(err)
	}
	nested, _, err := Begin(context.Background(), dir, txFiles, TxOptions{Inherited: strings.TrimPrefix(first.Env(), LockEnv+"=")})
	if err != nil {
		t.Fatalf("nested: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("2.0\n"), 0o644)
	if r, err := nested.Rollback(); err != nil || len(r) != 0 {
		t.Fatalf("a nested rollback restored %v, %v", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var waited string
	if _, _, err := Begin(ctx, dir, txFiles, TxOptions{Waiting: func(h string) { waited = h }}); err == nil {
		t.Fatal("a second transaction began while the first held the lock")
	}
	if !strings.Contains(waited, "upds run release") || !strings.Contains(waited, "pid ") {
		t.Errorf("waiting for %q", waited)
	}
	done := make(chan error)
	go func() {
		tx, _, err := Begin(context.Background(), dir, txFiles, TxOptions{})
		if err == nil {
			err = tx.Commit()
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := first.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(dir, "VERSION")); got != "1.0\n" {
		t.Errorf("VERSION: %q", got)
	}
}
