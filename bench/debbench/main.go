// Command debbench packages a directory tree with stdlib/deb, for bench/deb.sh: deb.Tree walks
// it as tree() in BUILD.star does, and deb.WriteFile writes it, taking the entries through
// Package.Walk (or, with -api entries, as a []Entry with Open functions, the older way).
//
//	debbench -root DIR -o OUT.deb [-z gzip|xz|zstd|none] [-level N] [-api walk|entries]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
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
	memprofile := flag.String("memprofile", "", "write a heap profile here, of the Plan of the tree before it is written")
	fileMTimes := flag.Bool("file-mtimes", true, "entries keep the modification times of their files (false: all get the package's, as debbench did before Tree)")
	api := flag.String("api", "walk", "walk: Package.Walk with Src files; entries: a []Entry with Open functions (the older API)")
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
	walk := deb.Tree(*root, "/")
	if !*fileMTimes {
		tree := walk
		walk = func(add func(deb.Entry) error) error {
			return tree(func(e deb.Entry) error { e.MTime = time.Time{}; return add(e) })
		}
	}
	var entries []deb.Entry
	if *api == "entries" {
		err := walk(func(e deb.Entry) error {
			if e.Type == deb.TypeFile {
				name := e.Src
				e.Open = func() (io.ReadCloser, error) { return os.Open(name) }
			}
			entries = append(entries, e)
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
		walk = nil
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
		Walk:        walk,
		Compression: *z,
		Level:       *level,
		MTime:       time.Unix(1700000000, 0),
	}
	pl, err := deb.Prepare(pkg)
	if err != nil {
		log.Fatal(err)
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			log.Fatal(err)
		}
		runtime.GC()
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	res, err := pl.WriteFile(context.Background(), *out)
	if err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
	fmt.Printf("%s: %d bytes, %d entries, Installed-Size %d\n", res.Path, res.Size, res.Files, res.InstalledSize)
}
