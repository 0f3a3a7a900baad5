package deb

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// dataMagic is how a compressed data.tar starts, by compression name.
var dataMagic = map[string][]byte{
	"gzip":  {0x1f, 0x8b, 0x08},
	"xz":    {0xfd, '7', 'z', 'X', 'Z', 0x00},
	"zstd":  {0x28, 0xb5, 0x2f, 0xfd},
	"bzip2": []byte("BZh"),
}

// checkDataHead is the cheap check of data.tar (ReadOptions.DataHead): a compressed member
// starts with its compression's magic number, an uncompressed one with a tar header whose
// path stays inside the package root. Nothing is decompressed (an xz decoder alone costs
// its whole dictionary, 8 MiB for dpkg-deb's default), so it finds a member that is not what
// its name says (another compression, another file), not damage further in: that is
// ReadOptions.Verify, which reads data.tar to its end.
func checkDataHead(r io.Reader, c *compression) error {
	if magic, ok := dataMagic[c.name]; ok {
		head := make([]byte, len(magic))
		if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, magic) {
			return fmt.Errorf("not %s data: it does not start with the %s magic number", c.name, c.name)
		}
		return nil
	}
	h, err := tar.NewReader(io.LimitReader(r, 64<<10)).Next()
	switch {
	case errors.Is(err, io.EOF):
		return nil // an empty tar: nothing to unpack
	case err != nil:
		return fmt.Errorf("not a tar archive: %w", err)
	}
	_, err = cleanMember(h.Name)
	return err
}
