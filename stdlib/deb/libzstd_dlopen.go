//go:build linux && (amd64 || arm64 || 386 || arm || ppc64le || riscv64 || loong64)

package deb

import (
	"fmt"
	"sync"

	"github.com/ebitengine/purego"
)

// loadLibzstd opens libzstd.so.1 once (purego builds on these Linux architectures).
var loadLibzstd = sync.OnceValues(func() (*libzstd, error) {
	h, err := purego.Dlopen("libzstd.so.1", purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	z := &libzstd{}
	var versionNumber func() uint32
	for name, fn := range map[string]any{
		"ZSTD_versionNumber":     &versionNumber,
		"ZSTD_createCCtx":        &z.createCCtx,
		"ZSTD_freeCCtx":          &z.freeCCtx,
		"ZSTD_CCtx_setParameter": &z.setParameter,
		"ZSTD_compressStream2":   &z.compressStream,
		"ZSTD_isError":           &z.isError,
		"ZSTD_getErrorName":      &z.errorName,
	} {
		if _, err := purego.Dlsym(h, name); err != nil {
			return nil, fmt.Errorf("libzstd.so.1: %w", err)
		}
		purego.RegisterLibFunc(fn, h, name)
	}
	z.version = versionNumber()
	if z.version < 10400 {
		return nil, fmt.Errorf("libzstd %s is older than 1.4.0", zstdVersionString(z.version))
	}
	return z, nil
})
