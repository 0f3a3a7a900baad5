package deb

import (
	"bytes"
	"strings"
	"testing"
)

// TestReadDataHead: DataHead refuses a data.tar that is not what its name says, and lets
// through damage further in (that is Verify's).
func TestReadDataHead(t *testing.T) {
	for _, comp := range writtenCompressions {
		b := writeBytes(t, samplePackage("upds-test-head", comp))
		if _, err := Read(bytes.NewReader(b), ReadOptions{DataHead: true, Hash: true}); err != nil {
			t.Errorf("%s: %v", comp, err)
		}
	}
	gz := writeBytes(t, samplePackage("upds-test-head", "gzip"))
	for _, tc := range []struct {
		name string
		in   []byte
		want string // "" : accepted
	}{
		{"xz name, gzip data", bytes.Replace(gz, []byte("data.tar.gz"), []byte("data.tar.xz"), 1), "not xz data"},
		{"absolute first entry", hostileDeb(t, "/etc/passwd"), "absolute path escapes"},
		{"dotdot after the first entry", hostileDeb(t, "./usr/x", "./usr/../../etc/passwd"), ""},
		{"corrupt data", corrupt(gz), ""},
	} {
		_, err := Read(bytes.NewReader(tc.in), ReadOptions{DataHead: true})
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}
