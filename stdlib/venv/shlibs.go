package venv

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// sharedLibDepends does the part of dpkg-shlibdeps' job a venv needs: the DT_NEEDED libraries
// of every compiled file, found where the dynamic linker finds them (ldconfig's cache), mapped
// to the Debian packages that own them (dpkg -S), with the minimal version their shlibs file
// asks for ("zlib1g (>= 1:1.2.3.3.dfsg-1)"). Libraries inside the venv (bundled by
// auditwheel, e.g. pkg.libs/) and the interpreter's own packages are left out; the C library is
// not (lintian's missing-dependency-on-libc).
func sharedLibDepends(ctx context.Context, root string, elfFiles []string, py *interpreter) ([]string, error) {
	if len(elfFiles) == 0 {
		return nil, nil
	}
	bundled := map[string]bool{}
	needed := map[string]elf.Machine{}
	for _, rp := range elfFiles {
		bundled[filepath.Base(rp)] = true
		f, err := elf.Open(filepath.Join(root, rp))
		if err != nil {
			continue // not a loadable ELF file; nothing to resolve
		}
		libs, err := f.ImportedLibraries()
		machine := f.Machine
		f.Close()
		if err != nil {
			continue
		}
		for _, l := range libs {
			needed[l] = machine
		}
	}
	cache, err := ldconfigCache(ctx)
	if err != nil {
		return nil, err
	}
	pkgs := map[string]string{} // package -> relation
	libs := make([]string, 0, len(needed))
	for lib := range needed {
		libs = append(libs, lib)
	}
	sort.Strings(libs)
	for _, lib := range libs {
		machine := needed[lib]
		if bundled[lib] {
			continue
		}
		path := ""
		for _, cand := range cache[lib] {
			if f, err := elf.Open(cand); err == nil {
				ok := f.Machine == machine
				f.Close()
				if ok {
					path = cand
					break
				}
			}
		}
		if path == "" {
			return nil, fmt.Errorf("compiled files need %s, which is not installed on the build machine (ldconfig -p)", lib)
		}
		pkg, err := ownerPackage(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("compiled files need %s: %w", path, err)
		}
		if _, ok := pkgs[pkg]; !ok {
			pkgs[pkg] = shlibsRelation(ctx, pkg, lib)
		}
	}
	var out []string
	for p, rel := range pkgs {
		// The interpreter's own packages: Depends has the interpreter already.
		if p == py.Package() || p == py.Package()+"-minimal" || p == "lib"+py.Package()+"-minimal" || p == "lib"+py.Package()+"-stdlib" {
			continue
		}
		out = append(out, rel)
	}
	sort.Strings(out)
	return out, nil
}

// ldconfigCache maps library sonames to the paths in the dynamic linker's cache.
func ldconfigCache(ctx context.Context) (map[string][]string, error) {
	bin := "/sbin/ldconfig"
	if _, err := os.Stat(bin); err != nil {
		bin = "ldconfig"
	}
	cmd := exec.CommandContext(ctx, bin, "-p")
	cmd.Env = scrubbedEnv("", "")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ldconfig -p: %w", err)
	}
	cache := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "	libz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1"
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, " (")
		if !ok {
			continue
		}
		_, path, ok := strings.Cut(rest, "=> ")
		if !ok {
			continue
		}
		cache[name] = append(cache[name], strings.TrimSpace(path))
	}
	return cache, nil
}

// ownerPackage asks dpkg which package owns path, trying the /usr-merged aliases.
func ownerPackage(ctx context.Context, path string) (string, error) {
	cands := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		cands = append(cands, real)
	}
	for _, c := range append([]string(nil), cands...) {
		if strings.HasPrefix(c, "/usr/") {
			cands = append(cands, strings.TrimPrefix(c, "/usr"))
		} else {
			cands = append(cands, "/usr"+c)
		}
	}
	for _, c := range cands {
		cmd := exec.CommandContext(ctx, "dpkg", "-S", c)
		cmd.Env = scrubbedEnv("", "")
		out, err := cmd.Output()
		if err != nil {
			continue
		}
		// "zlib1g:amd64: /lib/x86_64-linux-gnu/libz.so.1"
		line, _, _ := strings.Cut(string(out), "\n")
		pkg, _, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		pkg, _, _ = strings.Cut(pkg, ",") // "a, b: path" when several own it
		pkg, _, _ = strings.Cut(pkg, ":") // drop the architecture qualifier
		return strings.TrimSpace(pkg), nil
	}
	return "", fmt.Errorf("no Debian package owns it (dpkg -S)")
}

var sonameRE = regexp.MustCompile(`^(.*)\.so\.(\d[\w.]*)$`)    // libz.so.1
var sonameDashRE = regexp.MustCompile(`^(.*)-(\d[\w.]*)\.so$`) // libfoo-1.2.so

// shlibsRelation returns the dependency the package's shlibs file gives for soname, as
// dpkg-shlibdeps would use it, or the bare package name when there is none.
func shlibsRelation(ctx context.Context, pkg, soname string) string {
	var name, version string
	if m := sonameRE.FindStringSubmatch(soname); m != nil {
		name, version = m[1], m[2]
	} else if m := sonameDashRE.FindStringSubmatch(soname); m != nil {
		name, version = m[1], m[2]
	} else {
		return pkg
	}
	cmd := exec.CommandContext(ctx, "dpkg-query", "--control-path", pkg, "shlibs")
	cmd.Env = scrubbedEnv("", "")
	out, err := cmd.Output()
	if err != nil {
		return pkg
	}
	for _, path := range strings.Fields(string(out)) {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || strings.HasSuffix(f[0], ":") { // "udeb: ..." lines are for the installer
				continue
			}
			if f[0] == name && f[1] == version {
				rel := strings.Join(f[2:], " ")
				if strings.HasPrefix(rel, pkg) {
					return rel
				}
			}
		}
	}
	return pkg
}
