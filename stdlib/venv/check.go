package venv

import "context"

// CheckPython returns an error unless path is a system interpreter that the server will have
// too: a Python 3 under /usr/bin (or /bin) owned by a Debian package.
func CheckPython(ctx context.Context, path string) error {
	py, err := resolveInterpreter(ctx, path)
	if err != nil {
		return err
	}
	return py.checkSystem(ctx)
}
