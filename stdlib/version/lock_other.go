//go:build !unix

package version

import "os"

// flock is a no-op where flock(2) does not exist: bumps are not serialised between processes.
func flock(f *os.File) error { return nil }

// tryFlock always succeeds where flock(2) does not exist.
func tryFlock(f *os.File) (bool, error) { return true, nil }
