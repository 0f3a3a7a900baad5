package deb

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// syntheticPackage is a venv-like tree: 100 directories of 20 files of 8 KiB text each
// (16 MiB), built in memory so that the benchmark measures the writer, not the disk.
func syntheticPackage(comp string) *Package {
	var entries []Entry
	for d := 0; d < 100; d++ {
		for f := 0; f < 20; f++ {
			var b strings.Builder
			for b.Len() < 8<<10 {
				fmt.Fprintf(&b, "def function_%d_%d(x):\n    return x * %d + %d\n\n", d, f, b.Len(), d*f)
			}
			body := b.String()
			entries = append(entries, Entry{
				Path: fmt.Sprintf("/var/virtualenvs/bench/lib/python3.11/site-packages/pkg%03d/mod%02d.py", d, f),
				Type: TypeFile, Size: int64(len(body)), Open: memOpen(body),
			})
		}
	}
	return &Package{Control: testControl("upds-bench"), Entries: entries, Compression: comp, MTime: time.Unix(1700000000, 0)}
}

func BenchmarkWrite(b *testing.B) {
	for _, comp := range writtenCompressions {
		b.Run(comp, func(b *testing.B) {
			p := syntheticPackage(comp)
			p.TempDir = b.TempDir()
			var size int64
			for _, e := range p.Entries {
				size += e.Size
			}
			b.SetBytes(size)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Write(io.Discard, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	p := syntheticPackage("gzip")
	p.TempDir = b.TempDir()
	var buf strings.Builder
	if _, err := Write(&buf, p); err != nil {
		b.Fatal(err)
	}
	data := buf.String()
	for _, opt := range []ReadOptions{{}, {Files: true, Verify: true, Hash: true}} {
		b.Run(fmt.Sprintf("files=%v", opt.Files), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if _, err := Read(strings.NewReader(data), opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
