//go:build !(linux && (amd64 || arm64 || 386 || arm || ppc64le || riscv64 || loong64))

package deb

import "errors"

// loadLibzstd: purego does not build here, so zstd uses the pure-Go encoder.
func loadLibzstd() (*libzstd, error) {
	return nil, errors.New("libzstd is not loaded on this platform")
}
