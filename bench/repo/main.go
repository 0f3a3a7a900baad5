// Command repo is the helper of bench/repo.sh: it generates tiny .deb files quickly and
// drives stdlib/repo (init, publish) so the script can time it next to apt-ftparchive
// and reprepro.
//
//	go run ./bench/repo gen N DIR [FIRST [VERSION]]
//	                                        write N packages benchNNNNNN_VERSION_amd64.deb into DIR
//	                                        (numbered from FIRST, default 0; VERSION default 1.0-1)
//	go run ./bench/repo init DIR [STORAGE]  repo.Init with architectures amd64 all (and Storage)
//	go run ./bench/repo publish DIR         repo.Publish; prints the report summary
//	go run ./bench/repo read MODE DIR       deb.Read of every DIR/*.deb on every core, as a publish
//	                                        reads uploads: MODE control (control and hashes),
//	                                        head (also data.tar's magic: --verify=basic), walk
//	                                        (data.tar decompressed, tar headers only) or full
//	                                        (also md5sums: --verify=full)
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/blakesmith/ar"
	"github.com/klauspost/compress/gzip"

	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/stdlib/deb"
	"github.com/upds/upds/stdlib/repo"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: repo gen N DIR [FIRST [VERSION]] | init DIR [STORAGE] | publish DIR | read MODE DIR")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		n, _ := strconv.Atoi(os.Args[2])
		first, ver := 0, "1.0-1"
		if len(os.Args) > 4 {
			first, _ = strconv.Atoi(os.Args[4])
		}
		if len(os.Args) > 5 {
			ver = os.Args[5]
		}
		err = gen(n, first, ver, os.Args[3])
	case "init":
		cfg := repo.Config{Architectures: []string{"amd64", "all"}}
		if len(os.Args) > 3 {
			cfg.Storage = os.Args[3] // s3://BUCKET/PREFIX (bench/s3.sh)
		}
		err = repo.Init(os.Args[2], repo.InitOptions{Config: cfg})
	case "read":
		if len(os.Args) < 4 {
			err = fmt.Errorf("usage: repo read MODE DIR")
			break
		}
		err = readAll(os.Args[2], os.Args[3])
	case "publish":
		if p := os.Getenv("CPUPROFILE"); p != "" {
			f, _ := os.Create(p)
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		var rep *repo.PublishReport
		rep, err = repo.Publish(context.Background(), os.Args[2], repo.PublishOptions{})
		if err == nil {
			fmt.Fprintf(os.Stderr, "added %d, rejected %d, %d packages, %v\n", len(rep.Added), len(rep.Rejected), rep.Packages, rep.Duration.Round(time.Millisecond))
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "repo:", err)
		os.Exit(1)
	}
}

// readAll reads every .deb in dir as mode says.
func readAll(mode, dir string) error {
	opt, ok := map[string]deb.ReadOptions{
		"control": {Hash: true},
		"head":    {Hash: true, DataHead: true},
		"walk":    {Hash: true, Files: true},
		"full":    {Hash: true, Verify: true},
	}[mode]
	if !ok {
		return fmt.Errorf("read: mode %q: want control, head, walk or full", mode)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil {
		return err
	}
	return parallel.ForEach(context.Background(), len(files), 0, func(_ context.Context, i int) error {
		f, err := os.Open(files[i])
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := deb.Read(bufio.NewReaderSize(f, 64<<10), opt); err != nil {
			return fmt.Errorf("%s: %w", files[i], err)
		}
		return nil
	})
}

func gen(n, first int, ver, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return parallel.ForEach(context.Background(), n, 0, func(_ context.Context, i int) error {
		return writeDeb(dir, fmt.Sprintf("bench%06d", first+i), ver)
	})
}

var epoch = time.Unix(1700000000, 0)

func targz(files []tar.Header, content map[string]string) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	for _, h := range files {
		h.ModTime, h.Uname, h.Gname, h.Format = epoch, "root", "root", tar.FormatGNU
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(content[h.Name]))
		}
		tw.WriteHeader(&h)
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(content[h.Name]))
		}
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}

func writeDeb(dir, name, ver string) error {
	readme := "./usr/share/doc/" + name + "/README"
	body := name + " is a benchmark package.\n"
	sum := md5.Sum([]byte(body))
	data := targz([]tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/share/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/share/doc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/share/doc/" + name + "/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: readme, Typeflag: tar.TypeReg, Mode: 0o644},
	}, map[string]string{readme: body})
	control := "Package: " + name + "\nVersion: " + ver + "\nArchitecture: amd64\nMaintainer: Bench <bench@example.com>\n" +
		"Installed-Size: 20\nDepends: libc6 (>= 2.36)\nSection: misc\nPriority: optional\n" +
		"Description: benchmark package " + name + "\n A tiny package generated for bench/repo.sh.\n"
	ctl := targz([]tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./control", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./md5sums", Typeflag: tar.TypeReg, Mode: 0o644},
	}, map[string]string{"./control": control, "./md5sums": fmt.Sprintf("%x  usr/share/doc/%s/README\n", sum, name)})
	var b bytes.Buffer
	w := ar.NewWriter(&b)
	w.WriteGlobalHeader()
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", ctl}, {"data.tar.gz", data}} {
		if err := w.WriteHeader(&ar.Header{Name: m.name, Size: int64(len(m.data)), Mode: 0o644, ModTime: epoch}); err != nil {
			return err
		}
		w.Write(m.data)
	}
	return os.WriteFile(filepath.Join(dir, name+"_"+ver+"_amd64.deb"), b.Bytes(), 0o644)
}
