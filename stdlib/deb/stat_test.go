package deb

import (
	"fmt"
	"io/fs"
	"syscall"
)

func statOwner(fi fs.FileInfo) string {
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
}
