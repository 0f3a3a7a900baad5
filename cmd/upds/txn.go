package main

// upds run as a transaction over the project's version state: VERSION and upds.lock are as
// they were before the run unless it completes (stdlib/version's Transaction).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/version"
)

// versionState are the files a run's transaction covers, relative to the project root.
func versionState(h *interp.Host) []string {
	return []string{h.Project.VersionFile, version.LockFile}
}

// txOptions are the transaction options of a command; command says what runs.
func txOptions(command string) version.TxOptions {
	return version.TxOptions{
		Command:   command,
		Inherited: os.Getenv(version.LockEnv),
		Waiting: func(holder string) {
			fmt.Fprintf(os.Stderr, "upds: waiting for the upds run in progress in this project (%s)\n", holder)
		},
	}
}

// beginRun starts the transaction of upds run TASK...: it waits for a run in progress, puts
// back what a run that was killed left, and journals VERSION and upds.lock. The processes the
// run starts join the transaction (version.LockEnv).
func beginRun(ctx context.Context, b *interp.Build, names []string) (*version.Transaction, error) {
	h := b.Host
	tx, restored, err := version.Begin(ctx, h.Root, versionState(h), txOptions("upds run "+strings.Join(names, " ")))
	reportRestored(restored, "an earlier run stopped before it completed")
	if err != nil {
		return nil, err
	}
	h.Env = append(h.Env, tx.Env())
	return tx, nil
}

// endRun ends the transaction of a run that returned runErr: commit when it completed, else
// put VERSION and upds.lock back and say so.
func endRun(tx *version.Transaction, runErr error) error {
	if runErr == nil {
		return tx.Commit()
	}
	restored, err := tx.Rollback()
	reportRestored(restored, "the run did not complete")
	if err != nil {
		return errors.Join(runErr, fmt.Errorf("put back VERSION and upds.lock: %w", err))
	}
	return runErr
}

// recoverRun puts back what a killed run left, before a command that reads or changes the
// version outside a run (upds bump, upds clean); it waits for a run in progress.
func recoverRun(ctx context.Context, b *interp.Build, command string) error {
	restored, err := version.Recover(ctx, b.Host.Root, txOptions(command))
	reportRestored(restored, "an earlier run stopped before it completed")
	return err
}

// reportRestored says on stderr which files were put back, and why.
func reportRestored(restored []version.Restored, why string) {
	if len(restored) == 0 {
		return
	}
	var parts []string
	for _, r := range restored {
		back, left := oneLine(r.Back), oneLine(r.Left)
		switch {
		case r.Back == nil:
			parts = append(parts, r.Path+" removed")
		case back != "" && left != "":
			parts = append(parts, fmt.Sprintf("%s %s (not %s)", r.Path, back, left))
		default:
			parts = append(parts, r.Path)
		}
	}
	fmt.Fprintf(os.Stderr, "upds: put back as before (%s): %s\n", why, strings.Join(parts, ", "))
}

// oneLine is the content of a one-line file without its newline, or "".
func oneLine(b []byte) string {
	s := string(bytes.TrimSpace(b))
	if s == "" || strings.Contains(s, "\n") {
		return ""
	}
	return s
}
