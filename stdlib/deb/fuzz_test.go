package deb

import (
	"bytes"
	"testing"
	"time"
)

func FuzzRead(f *testing.F) {
	for _, comp := range writtenCompressions {
		p := &Package{
			Control:     testControl("upds-fuzz"),
			Entries:     []Entry{fileEntry("/etc/upds-fuzz.conf", "a = 1\n", 0), {Path: "/usr/l", Type: TypeSymlink, Target: "../etc"}},
			Conffiles:   []string{"/etc/upds-fuzz.conf"},
			Scripts:     map[string][]byte{"postinst": []byte("#!/bin/sh\n")},
			Compression: comp,
			MTime:       time.Unix(1700000000, 0),
			TempDir:     f.TempDir(),
		}
		var b bytes.Buffer
		if _, err := Write(&b, p); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add([]byte("!<arch>\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Read(bytes.NewReader(data), ReadOptions{Files: true, Verify: true, Hash: true})
		if err != nil {
			return
		}
		if info.Control.Get("Package") == "" {
			t.Fatal("accepted a package without a name")
		}
		for _, fi := range info.Files {
			if err := CheckPath(fi.Path); err != nil && fi.Path != "/" {
				t.Fatalf("accepted path %q: %v", fi.Path, err)
			}
		}
		var out bytes.Buffer
		if err := info.WriteText(&out); err != nil {
			// control values read from a package may be unwritable (a "." line); that is an
			// error, not a panic
			return
		}
	})
}
