package venv

import (
	"fmt"
	"path/filepath"
)

// maintainerScripts returns the postinst and prerm of a venv package. postinst byte-compiles the
// venv's lib directory with the venv's own interpreter (a file that does not compile, such as a
// template shipped as .py, only gives a warning); prerm removes the __pycache__ directories and
// stray .pyc files that compiling or running created, so that remove and purge leave nothing.
func maintainerScripts(name, into string, py *interpreter) (postinst, prerm []byte) {
	lib := filepath.Join(into, "lib", "python"+py.XY)
	postinst = []byte(fmt.Sprintf(`#!/bin/sh
# postinst of the virtualenv %[1]s at %[2]s (written by upds)
set -e

case "$1" in
    configure|abort-upgrade|abort-remove|abort-deconfigure)
        if [ -x '%[2]s/bin/python' ] && [ -d '%[3]s' ]; then
            if ! '%[2]s/bin/python' -m compileall -q -j 0 '%[3]s' >/dev/null 2>&1; then
                echo "%[1]s: some files in %[3]s could not be byte-compiled; they run uncompiled" >&2
            fi
        fi
        ;;
    triggered)
        ;;
    *)
        echo "postinst called with unknown argument '$1'" >&2
        exit 1
        ;;
esac

exit 0
`, name, into, lib))
	prerm = []byte(fmt.Sprintf(`#!/bin/sh
# prerm of the virtualenv %[1]s at %[2]s (written by upds)
set -e

case "$1" in
    remove|upgrade|deconfigure|failed-upgrade)
        if [ -d '%[2]s' ]; then
            find '%[2]s' -type d -name __pycache__ -prune -exec rm -rf {} +
            find '%[2]s' -type f \( -name '*.pyc' -o -name '*.pyo' \) -delete
        fi
        ;;
    *)
        echo "prerm called with unknown argument '$1'" >&2
        exit 1
        ;;
esac

exit 0
`, name, into))
	return postinst, prerm
}
