package servertest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Suite is the Debian release of every server: Debian 12.
const Suite = "bookworm"

// Packages are installed into the base root besides debootstrap's minbase variant:
// the SSH server and sudo, procps (ps, pgrep: is apt still running?), curl (for a
// repository's setup.sh), apt-utils (as on a standard Debian install: debconf
// configures packages before unpacking them), and what the example (examples/hello) depends on from Debian
// (python3, nginx, uwsgi, uwsgi-plugin-python3), so that apt on a server needs no
// repository but the test's own on 127.0.0.1.
var Packages = []string{
	"openssh-server", "sudo", "procps", "curl", "apt-utils",
	"python3", "nginx", "uwsgi", "uwsgi-plugin-python3",
}

// CacheEnv names the environment variable that overrides DefaultCacheDir.
const CacheEnv = "UPDS_SERVERTEST_CACHE"

// MirrorEnv names the environment variable that overrides the Debian mirror taken from
// apt's sources (a URL such as http://deb.debian.org/debian).
const MirrorEnv = "UPDS_SERVERTEST_MIRROR"

// DefaultCacheDir holds the base roots, one directory per set of debootstrap arguments.
const DefaultCacheDir = "/var/cache/upds-servertest"

// format changes whenever the preparation of a base root changes in a way its hash
// does not see.
const format = "servertest base 1"

// prepareScript turns a fresh debootstrap root ($1) into the base every server starts
// from. Run in a private mount namespace, as root.
const prepareScript = `set -eu
r=$1
# No Debian mirror: apt on a server knows only the repositories the test adds.
chroot "$r" apt-get clean
find "$r/var/lib/apt/lists" -maxdepth 1 -type f -delete
printf '%s\n' '# servertest: no Debian mirror; tests add their repository under sources.list.d/' >"$r/etc/apt/sources.list"
# No init system runs: services are not started, as in Debian's build chroots.
printf '%s\n' '#!/bin/sh' '# servertest: no init system runs here; services are not started.' 'exit 101' >"$r/usr/sbin/policy-rc.d"
chmod 0755 "$r/usr/sbin/policy-rc.d"
# dpkg without fsync, as in Debian's container images.
printf '%s\n' '# servertest: tests need no crash safety' 'force-unsafe-io' >"$r/etc/dpkg/dpkg.cfg.d/servertest-unsafe-io"
# Every server gets its own host key and hostname.
rm -f "$r"/etc/ssh/ssh_host_*
rm -f "$r/etc/hostname"
`

// BaseConfig is what a base root is made from. Its hash names the cache directory.
type BaseConfig struct {
	Mirror   string   // Debian mirror URL
	Suite    string   // Suite
	Arch     string   // dpkg --print-architecture
	Packages []string // Packages
}

func (c BaseConfig) args() []string {
	return []string{"--variant=minbase", "--components=main", "--arch=" + c.Arch,
		"--include=" + strings.Join(c.Packages, ","), c.Suite}
}

// key names the cache entry: suite, architecture and a hash of everything that shapes
// the root (not the mirror: any Debian mirror serves the same packages).
func (c BaseConfig) key() string {
	pkgs := append([]string(nil), c.Packages...)
	sort.Strings(pkgs)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s", format, c.Suite, c.Arch, strings.Join(pkgs, ","), prepareScript)
	return c.Suite + "-" + c.Arch + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// Base is a prepared base root in the cache, held with a shared lock until Release so
// that no other process removes it while servers use it.
type Base struct {
	Root   string // the root directory: never write into it
	Config BaseConfig
	lock   *os.File
	once   sync.Once
}

// Release drops the shared lock.
func (b *Base) Release() {
	b.once.Do(func() {
		if b.lock != nil {
			b.lock.Close()
		}
	})
}

func cacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return DefaultCacheDir
}

// DefaultConfig is the base root of Suite with Packages, from this machine's Debian
// mirror (see HostMirror).
func DefaultConfig() (BaseConfig, error) {
	mirror, err := HostMirror()
	if err != nil {
		return BaseConfig{}, err
	}
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return BaseConfig{}, fmt.Errorf("servertest: dpkg --print-architecture: %v", err)
	}
	return BaseConfig{Mirror: mirror, Suite: Suite, Arch: strings.TrimSpace(string(out)), Packages: Packages}, nil
}

// Prepare returns the base root for c, making it with debootstrap first if the cache
// has none (under an exclusive lock: concurrent test processes wait for one build).
// logf reports progress (a cold build takes minutes); it may be nil. The caller must
// Release the Base.
func Prepare(ctx context.Context, c BaseConfig, logf func(format string, args ...any)) (*Base, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("servertest: Debian test servers need root (debootstrap, mount, chroot): run the tests as root, as .ci/run does")
	}
	dir := cacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("servertest: cache: %w", err)
	}
	name := c.key()
	root := filepath.Join(dir, name, "root")
	lock, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("servertest: cache lock: %w", err)
	}
	b := &Base{Root: root, Config: c, lock: lock}
	if err := flock(ctx, lock, syscall.LOCK_SH); err != nil {
		lock.Close()
		return nil, err
	}
	if _, err := os.Stat(root); err == nil {
		return b, nil
	}
	// Build it: exclusively, then share again.
	if err := flock(ctx, lock, syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, err
	}
	if _, err := os.Stat(root); err != nil {
		start := time.Now()
		logf("servertest: making the base root %s with debootstrap from %s (once per machine: a few minutes)", root, c.Mirror)
		if err := build(ctx, c, filepath.Join(dir, name)); err != nil {
			lock.Close()
			return nil, err
		}
		logf("servertest: base root made in %s", time.Since(start).Round(time.Second))
		prune(dir, name, logf)
	}
	if err := flock(ctx, lock, syscall.LOCK_SH); err != nil {
		lock.Close()
		return nil, err
	}
	return b, nil
}

// flock waits for the lock, giving up when ctx ends.
func flock(ctx context.Context, f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("servertest: lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("servertest: waiting for %s (another test process builds the base root): %w", f.Name(), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// build runs debootstrap into entry/root.tmp, prepares it and renames it to entry/root.
// debootstrap and the preparation run in their own mount and PID namespaces: the /proc
// and /sys debootstrap mounts in the target vanish with them, even when killed.
func build(ctx context.Context, c BaseConfig, entry string) error {
	for _, tool := range []string{"debootstrap", "unshare", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("servertest: %s not found: apt-get install debootstrap (it is in .ci/packages)", tool)
		}
	}
	tmp := filepath.Join(entry, "root.tmp")
	if err := removeTree(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(entry, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(entry, "debootstrap.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	script := "set -eu\nt=$1 m=$2\nshift 2\ndebootstrap \"$@\" \"$t\" \"$m\"\nset -- \"$t\"\n" + prepareScript
	args := append([]string{"--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
		"/bin/sh", "-c", script, "sh", tmp, c.Mirror}, c.args()...)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if p := aptProxy(); p != "" && os.Getenv("http_proxy") == "" {
		cmd.Env = append(cmd.Env, "http_proxy="+p)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	err = spawn(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return fmt.Errorf("servertest: debootstrap %s from %s failed (%v); is the mirror reachable? Set %s to another Debian mirror. Last lines of %s:\n%s",
			c.Suite, c.Mirror, err, MirrorEnv, logPath, tail(logPath, 25))
	}
	if err := os.Rename(tmp, filepath.Join(entry, "root")); err != nil {
		return err
	}
	info := fmt.Sprintf("made %s by servertest (%s)\nmirror %s\ndebootstrap %s\n", time.Now().UTC().Format(time.RFC3339), format, c.Mirror, strings.Join(c.args(), " "))
	return os.WriteFile(filepath.Join(entry, "info"), []byte(info), 0o644)
}

// prune removes the cache entries of other configurations that no process uses.
func prune(dir, keep string, logf func(string, ...any)) {
	locks, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
	for _, l := range locks {
		name := strings.TrimSuffix(filepath.Base(l), ".lock")
		if name == keep {
			continue
		}
		f, err := os.OpenFile(l, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if err := removeTree(filepath.Join(dir, name)); err == nil {
				os.Remove(l)
				logf("servertest: removed the unused base root %s", name)
			}
		}
		f.Close()
	}
}

// removeTree removes dir, but only when nothing is mounted on or under it: it never
// deletes through a mount into another file system.
func removeTree(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if m := mountsUnder(abs); len(m) > 0 {
		return fmt.Errorf("servertest: not removing %s: mounted under it: %s", abs, strings.Join(m, ", "))
	}
	return os.RemoveAll(abs)
}

// mountsUnder lists the mount points at or under dir in this process's mount namespace.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{"(cannot read /proc/self/mountinfo: " + err.Error() + ")"}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// aptProxy is apt's Acquire::http::Proxy, which debootstrap does not read.
func aptProxy() string {
	out, err := exec.Command("apt-config", "shell", "P", "Acquire::http::Proxy").Output()
	if err != nil {
		return ""
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "P=")
	if !ok {
		return ""
	}
	return strings.Trim(v, "'")
}
