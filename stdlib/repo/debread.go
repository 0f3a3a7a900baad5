package repo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/blakesmith/ar"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/upds/upds/stdlib/deb/control"
)

// inspectDeb reads a .deb: its control paragraph, and checks that every data.tar
// member stays inside the package root.
// TODO: switch to deb.ReadFile once stdlib/deb's reader lands.
func inspectDeb(p string) (control.Paragraph, error) {
	f, err := os.Open(p)
	if err != nil {
		return control.Paragraph{}, err
	}
	defer f.Close()
	r := ar.NewReader(f)
	var ctl *control.Paragraph
	sawBinary, sawData := false, false
	for i := 0; ; i++ {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return control.Paragraph{}, fmt.Errorf("not a valid .deb (ar archive): %w", err)
		}
		name := strings.TrimSuffix(strings.TrimSpace(h.Name), "/")
		switch {
		case i == 0:
			if name != "debian-binary" {
				return control.Paragraph{}, fmt.Errorf("not a .deb: first member is %q, not debian-binary", name)
			}
			b, _ := io.ReadAll(io.LimitReader(r, 64))
			if !bytes.HasPrefix(b, []byte("2.")) {
				return control.Paragraph{}, fmt.Errorf("unsupported .deb format %q", bytes.TrimSpace(b))
			}
			sawBinary = true
		case strings.HasPrefix(name, "control.tar"):
			tr, closer, err := decompress(name, r)
			if err != nil {
				return control.Paragraph{}, err
			}
			p, err := readControlTar(tr)
			closer()
			if err != nil {
				return control.Paragraph{}, err
			}
			ctl = &p
		case strings.HasPrefix(name, "data.tar"):
			tr, closer, err := decompress(name, r)
			if err != nil {
				return control.Paragraph{}, err
			}
			err = checkDataTar(tr)
			closer()
			if err != nil {
				return control.Paragraph{}, err
			}
			sawData = true
		}
	}
	if !sawBinary || ctl == nil || !sawData {
		return control.Paragraph{}, errors.New("not a valid .deb: missing debian-binary, control.tar or data.tar")
	}
	return *ctl, nil
}

func decompress(name string, r io.Reader) (*tar.Reader, func(), error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return tar.NewReader(z), func() { z.Close() }, nil
	case strings.HasSuffix(name, ".xz"):
		z, err := xz.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return tar.NewReader(z), func() {}, nil
	case strings.HasSuffix(name, ".zst"):
		z, err := zstd.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return tar.NewReader(z), z.Close, nil
	case strings.HasSuffix(name, ".tar"):
		return tar.NewReader(r), func() {}, nil
	}
	return nil, nil, fmt.Errorf("unsupported member %s", name)
}

func readControlTar(tr *tar.Reader) (control.Paragraph, error) {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return control.Paragraph{}, errors.New("control.tar has no control file")
		}
		if err != nil {
			return control.Paragraph{}, fmt.Errorf("control.tar: %w", err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "./")) == "control" && h.Typeflag == tar.TypeReg {
			p, err := control.ParseOne(io.LimitReader(tr, 1<<20))
			if err != nil {
				return control.Paragraph{}, fmt.Errorf("control file: %w", err)
			}
			return p, nil
		}
	}
}

func checkDataTar(tr *tar.Reader) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("data.tar: %w", err)
		}
		if err := safePath(h.Name); err != nil {
			return fmt.Errorf("data.tar: %w", err)
		}
		if h.Typeflag == tar.TypeLink {
			if err := safePath(h.Linkname); err != nil {
				return fmt.Errorf("data.tar: hard link %s: %w", h.Name, err)
			}
		}
	}
}

func safePath(name string) error {
	n := strings.TrimPrefix(name, "./")
	if n == "." || n == "" || name == "./" {
		return nil
	}
	if strings.HasPrefix(n, "/") {
		return fmt.Errorf("path %q is absolute", name)
	}
	for _, el := range strings.Split(n, "/") {
		if el == ".." {
			return fmt.Errorf("path %q escapes the package root", name)
		}
	}
	return nil
}
