// Command debbench packages a directory tree with stdlib/deb, for bench/deb.sh: it walks the
// tree with os.Lstat (like tree() in BUILD.star) and calls deb.WriteFile.
//
//	debbench -root DIR -o OUT.deb [-z gzip|xz|zstd|none] [-level N]
package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/upds/upds/stdlib/deb"
	"github.com/upds/upds/stdlib/deb/control"
)

func main() {
	root := flag.String("root", "", "directory whose contents become the package's / (required)")
	out := flag.String("o", "out.deb", "output .deb")
	z := flag.String("z", "gzip", "compression: gzip, xz, zstd or none")
	level := flag.Int("level", 0, "compression level (0: the compressor's default)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *root == "" {
		flag.Usage()
		os.Exit(2)
	}
	var entries []deb.Entry
	err := filepath.WalkDir(*root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(*root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := deb.Entry{Path: "/" + filepath.ToSlash(rel), Mode: fi.Mode()}
		switch {
		case fi.IsDir():
			e.Type = deb.TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = deb.TypeSymlink
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			e.Type, e.Size = deb.TypeFile, fi.Size()
			e.Open = func() (io.ReadCloser, error) { return os.Open(p) }
		default:
			return nil // sockets, devices: not packaged
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	pkg := &deb.Package{
		Control: control.Paragraph{Fields: []control.Field{
			{Name: "Package", Value: "hello-virtualenv"},
			{Name: "Version", Value: "1.0.0"},
			{Name: "Architecture", Value: "amd64"},
			{Name: "Maintainer", Value: "Bench <bench@example.com>"},
			{Name: "Description", Value: "benchmark corpus"},
		}},
		Entries:     entries,
		Compression: *z,
		Level:       *level,
		MTime:       time.Unix(1700000000, 0),
	}
	res, err := deb.WriteFile(*out, pkg)
	if err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
	fmt.Printf("%s: %d bytes, %d entries, Installed-Size %d\n", res.Path, res.Size, res.Files, res.InstalledSize)
}
