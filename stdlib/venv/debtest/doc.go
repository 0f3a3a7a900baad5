// Package debtest holds the integration test of stdlib/venv with stdlib/deb: a built venv is
// packaged, installed with dpkg, run, purged and checked with lintian. It has no code of its own.
package debtest
