package deb

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
)

// WriteText writes the package the way `dpkg-deb -I` and `dpkg-deb -c` show it: the control
// fields, the conffiles, each maintainer script (config included), the triggers, templates,
// shlibs and symbols files in full, and (when Files was
// read) the file list with modes, owner/group, size, date and symlink targets.
func (i *Info) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Compression: control.tar %s, data.tar %s\n", i.ControlCompression, i.DataCompression)
	if i.Size > 0 {
		fmt.Fprintf(bw, "Size: %d bytes\nMD5: %s\nSHA256: %s\n", i.Size, i.MD5, i.SHA256)
	}
	bw.WriteString("\n")
	ctl, err := i.Control.Bytes()
	if err != nil {
		return err
	}
	for _, l := range strings.SplitAfter(string(ctl), "\n") {
		if l != "" {
			bw.WriteString(" " + l)
		}
	}
	if len(i.Conffiles) > 0 {
		bw.WriteString("\nConffiles:\n")
		for _, c := range i.Conffiles {
			bw.WriteString(" " + c + "\n")
		}
	}
	names := make([]string, 0, len(i.Scripts))
	for n := range i.Scripts {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool { return scriptOrder(names[a]) < scriptOrder(names[b]) })
	for _, n := range names {
		body := string(i.Scripts[n])
		fmt.Fprintf(bw, "\n%s (%d bytes):\n", n, len(body))
		writeIndented(bw, body)
	}
	for _, m := range []struct {
		name string
		data []byte
	}{{"triggers", i.Triggers}, {"templates", i.Templates}, {"shlibs", i.Shlibs}, {"symbols", i.Symbols}} {
		if len(m.data) > 0 {
			fmt.Fprintf(bw, "\n%s (%d bytes):\n", m.name, len(m.data))
			writeIndented(bw, string(m.data))
		}
	}
	if len(i.Files) > 0 {
		bw.WriteString("\nFiles:\n")
		// Owner/group and size in one column, right-aligned to the widest (as tar -tv does).
		width := 0
		for _, f := range i.Files {
			width = max(width, len(f.Owner)+1+len(f.Group)+1+len(fmt.Sprint(f.Size)))
		}
		for _, f := range i.Files {
			name := "." + f.Path
			if f.Type == TypeDir && f.Path != "/" {
				name += "/"
			}
			og := f.Owner + "/" + f.Group
			fmt.Fprintf(bw, "%s %s %*d %s %s", ModeString(f.Type, f.Mode), og, width-len(og)-1, f.Size,
				f.MTime.UTC().Format("2006-01-02 15:04"), name)
			switch f.Type {
			case TypeSymlink:
				bw.WriteString(" -> " + f.Target)
			case TypeHardlink:
				bw.WriteString(" link to ." + f.Target)
			}
			bw.WriteString("\n")
		}
	}
	return bw.Flush()
}

func writeIndented(w *bufio.Writer, body string) {
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		w.WriteString("  " + l + "\n")
	}
}

func scriptOrder(name string) int {
	for i, s := range scriptNames {
		if s == name {
			return i
		}
	}
	return len(scriptNames)
}

// ModeString formats a mode like ls and tar do: "drwxr-xr-x", "-rwsr-xr-x", "lrwxrwxrwx".
func ModeString(t Type, m fs.FileMode) string {
	b := []byte("-rwxrwxrwx")
	switch t {
	case TypeDir:
		b[0] = 'd'
	case TypeSymlink:
		b[0] = 'l'
	case TypeHardlink:
		b[0] = 'h'
	}
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(pos int, set bool, lower, upper byte) {
		if !set {
			return
		}
		if b[pos] == '-' {
			b[pos] = upper
		} else {
			b[pos] = lower
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}
