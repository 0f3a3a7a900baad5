package main

import (
	"strings"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
)

// readVersion reads the project's VERSION file when an action needs it.
func readVersion(h *interp.Host) (string, error) {
	b, err := afero.ReadFile(h.FS, h.Project.VersionFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
