package servertest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"

	"github.com/upds/upds/stdlib/sshconn/sshtest"
)

// Spec describes one server.
type Spec struct {
	// Name is the server's hostname and its alias in Fleet.SSHConfig ([a-z0-9-]).
	Name string
	// User is the login user: "root" (or empty) logs in as root; any other name is
	// created with a home directory, in group sudo, with passwordless sudo.
	User string
	// NoSudo gives a non-root User no sudo rights.
	NoSudo bool
}

// DefaultSpecs are the servers Start runs when given none: web1 with a root login and
// web2 with the sudo user deploy.
var DefaultSpecs = []Spec{{Name: "web1", User: "root"}, {Name: "web2", User: "deploy"}}

// Fleet is the servers of one Start call and the client files that reach them.
type Fleet struct {
	Servers []*Server
	// Dir is a private directory on this machine holding the files below and one
	// directory per server. It is removed when the fleet stops.
	Dir string
	// Identity is an ed25519 private key file (OpenSSH format, 0600) authorized for
	// the login user of every server: upds --identity, ssh -i.
	Identity string
	// Signer is Identity's key, for golang.org/x/crypto/ssh clients.
	Signer ssh.Signer
	// KnownHosts is a known_hosts file with every server's host key, recorded for
	// [127.0.0.1]:PORT: upds --known-hosts, ssh -o UserKnownHostsFile.
	KnownHosts string
	// SSHConfig is an ssh_config(5) file with one Host block per server, named after
	// it (see Server.SSHConfigBlock): ssh -F FILE web1.
	SSHConfig string
	// Base is the cached base root every server starts from.
	Base *Base

	stopOnce sync.Once
	stopErr  error
}

// Server is one Debian 12 server: an sshd on 127.0.0.1:Port running in its own mount,
// PID, UTS and IPC namespaces, chrooted into an overlay of the base root.
type Server struct {
	Name string
	User string // login user
	Host string // "127.0.0.1"
	Port int
	// HostKey is the server's ed25519 host key.
	HostKey ssh.PublicKey
	// Identity and KnownHosts are the fleet's files (see Fleet).
	Identity, KnownHosts string
	// Changes is the overlay's upper directory on this machine: every file created or
	// changed on the server since it started, under its path (a deleted file is a
	// 0/0 character device; a renamed directory of the base holds only what changed
	// in it). Read it to see what landed on this server and nowhere else; never
	// write into it while the server runs.
	Changes string
	// Dir is the server's private directory on this machine (sshd.log, Changes).
	Dir string

	fleet   *Fleet
	signer  ssh.Signer
	cmd     *exec.Cmd
	done    chan struct{}
	initPID int // the server's PID 1 (sshd) as this machine sees it
	pidfd   int
	// ns holds the server's namespaces open (mnt, uts, ipc, pid, in nsenter's order)
	// until it stops, so that their inode numbers, which identify its processes, are
	// not reused; root is its / (opened once sshd runs), for Command and Root.
	ns   []*os.File
	root *os.File

	stopOnce sync.Once
	stopErr  error
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}$`)
)

// Start runs the servers of specs (DefaultSpecs when none) for the duration of the
// test and returns them once each accepts SSH logins. The first call on a machine
// makes the base root with debootstrap (minutes); later calls start in well under a
// second per server. It fails the test (never skips) when the servers cannot run:
// not root, tools missing, no Debian mirror.
func Start(t testing.TB, specs ...Spec) *Fleet {
	t.Helper()
	f, err := start(t, specs)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func start(t testing.TB, specs []Spec) (*Fleet, error) {
	if len(specs) == 0 {
		specs = DefaultSpecs
	}
	specs = append([]Spec(nil), specs...)
	seen := map[string]bool{}
	for i, s := range specs {
		if !nameRE.MatchString(s.Name) || seen[s.Name] {
			return nil, fmt.Errorf("servertest: server name %q: want a unique hostname of [a-z0-9-]", s.Name)
		}
		seen[s.Name] = true
		if s.User == "" {
			specs[i].User = "root"
		} else if !userRE.MatchString(s.User) {
			return nil, fmt.Errorf("servertest: user %q: want a Debian user name", s.User)
		}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("servertest: Debian test servers need root (debootstrap, mount, chroot): run the tests as root, as .ci/run does")
	}
	for _, tool := range []string{"unshare", "nsenter", "mount", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("servertest: %s not found (util-linux, coreutils)", tool)
		}
	}
	cfg, err := DefaultConfig()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl)
			defer cancel()
		}
	}
	base, err := Prepare(ctx, cfg, t.Logf)
	if err != nil {
		return nil, err
	}
	t.Cleanup(base.Release)
	sweep()
	dir, err := os.MkdirTemp("", "upds-servertest-")
	if err != nil {
		return nil, err
	}
	if err := writeOwner(dir); err != nil {
		return nil, err
	}
	f := &Fleet{Dir: dir, Base: base, Identity: filepath.Join(dir, "id_ed25519"),
		KnownHosts: filepath.Join(dir, "known_hosts"), SSHConfig: filepath.Join(dir, "ssh_config")}
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range f.Servers {
				if log := s.Log(); log != "" {
					t.Logf("servertest: sshd log of %s:\n%s", s.Name, log)
				}
			}
		}
		if err := f.Stop(); err != nil {
			t.Error(err)
		}
	})
	if _, err := sshtest.WriteKey(f.Identity); err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(f.Identity)
	if err != nil {
		return nil, err
	}
	if f.Signer, err = ssh.ParsePrivateKey(keyPEM); err != nil {
		return nil, err
	}

	f.Servers = make([]*Server, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		wg.Go(func() { f.Servers[i], errs[i] = f.startServer(spec) })
	}
	wg.Wait()
	var started []*Server
	for _, s := range f.Servers {
		if s != nil {
			started = append(started, s)
		}
	}
	f.Servers = started
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var kh, cfgText bytes.Buffer
	fmt.Fprintf(&cfgText, "# servertest: the test servers (ssh -F %s NAME)\n", f.SSHConfig)
	for _, s := range f.Servers {
		kh.WriteString(s.KnownHostsLine() + "\n")
		cfgText.WriteString("\n" + s.SSHConfigBlock(s.Name))
	}
	if err := os.WriteFile(f.KnownHosts, kh.Bytes(), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.SSHConfig, cfgText.Bytes(), 0o600); err != nil {
		return nil, err
	}
	return f, nil
}

// Server returns the server named name, or nil.
func (f *Fleet) Server(name string) *Server {
	for _, s := range f.Servers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Targets returns "USER@127.0.0.1:PORT" of every server, for upds --host.
func (f *Fleet) Targets() []string {
	var out []string
	for _, s := range f.Servers {
		out = append(out, s.Target())
	}
	return out
}

// Stop stops every server (see Server.Stop) and removes Dir. Start's cleanup calls it;
// calling it earlier is fine (later calls return the first result).
func (f *Fleet) Stop() error {
	f.stopOnce.Do(func() {
		errs := make([]error, len(f.Servers))
		var wg sync.WaitGroup
		for i, s := range f.Servers {
			wg.Go(func() { errs[i] = s.Stop() })
		}
		wg.Wait()
		f.stopErr = errors.Join(errs...)
		if f.stopErr == nil {
			f.stopErr = removeTree(f.Dir)
		}
	})
	return f.stopErr
}

// bindRetries bounds the attempts when another process takes the chosen port first.
const bindRetries = 5

func (f *Fleet) startServer(spec Spec) (*Server, error) {
	var err error
	for range bindRetries {
		var s *Server
		var retry bool
		s, retry, err = f.tryServer(spec)
		if err == nil {
			return s, nil
		}
		if !retry {
			break
		}
	}
	return nil, err
}

// tryServer starts the server once. retry reports that sshd could not bind its port.
func (f *Fleet) tryServer(spec Spec) (_ *Server, retry bool, err error) {
	dir := filepath.Join(f.Dir, spec.Name)
	if err := removeTree(dir); err != nil {
		return nil, false, err
	}
	s := &Server{Name: spec.Name, User: spec.User, Host: "127.0.0.1", Dir: dir, Changes: filepath.Join(dir, "upper"),
		Identity: f.Identity, KnownHosts: f.KnownHosts, fleet: f, signer: f.Signer, done: make(chan struct{}), pidfd: -1}
	for _, d := range []string{"root", "upper", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, false, err
		}
	}
	for _, p := range []string{f.Base.Root, dir} {
		if strings.ContainsAny(p, ",:\\ \n") {
			return nil, false, fmt.Errorf("servertest: %q cannot be an overlay layer (no commas, colons, spaces or backslashes); set TMPDIR or %s", p, CacheEnv)
		}
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		return nil, false, err
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, false, err
	}
	s.HostKey = hostSigner.PublicKey()
	if s.Port, err = freePort(); err != nil {
		return nil, false, err
	}
	setup := setupScript(spec, s.Port, string(pem.EncodeToMemory(block)), string(ssh.MarshalAuthorizedKey(s.HostKey)), string(ssh.MarshalAuthorizedKey(f.Signer.PublicKey())))
	setupPath := filepath.Join(dir, "setup.sh")
	if err := os.WriteFile(setupPath, []byte(setup), 0o600); err != nil {
		return nil, false, err
	}
	logPath := filepath.Join(dir, "sshd.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, false, err
	}
	defer log.Close()
	s.cmd = exec.Command("unshare", "--mount", "--pid", "--uts", "--ipc", "--fork", "--kill-child", "--propagation", "private",
		"/bin/sh", "-c", nsScript, "sh", f.Base.Root, s.Changes, filepath.Join(dir, "work"), filepath.Join(dir, "root"), spec.Name, setupPath)
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := spawn(s.cmd); err != nil {
		return nil, false, fmt.Errorf("servertest: start %s: %w", spec.Name, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	fail := func(format string, args ...any) (*Server, bool, error) {
		s.Stop()
		logText := tail(logPath, 30)
		return nil, strings.Contains(logText, "Address already in use"), fmt.Errorf("servertest: server %s: %s; its log:\n%s", spec.Name, fmt.Sprintf(format, args...), logText)
	}
	if err := s.findInit(); err != nil {
		return fail("%v", err)
	}
	addr := s.Addr()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: spec.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(f.Signer)},
			HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 5 * time.Second})
		if err == nil {
			c.Close()
			if err := s.openRoot(); err != nil {
				return fail("%v", err)
			}
			break
		}
		select {
		case <-s.done:
			return fail("sshd exited before accepting a login on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			return fail("no SSH login on %s within a minute: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s, false, nil
}

// findInit finds the server's PID 1 (the child of unshare), opens a pidfd for it (so a
// recycled PID is never signalled) and records its namespaces.
func (s *Server) findInit() error {
	upid := s.cmd.Process.Pid
	children := fmt.Sprintf("/proc/%d/task/%d/children", upid, upid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(children)
		if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
			pid, err := strconv.Atoi(f[0])
			if err != nil {
				return err
			}
			s.initPID = pid
			break
		}
		select {
		case <-s.done:
			return errors.New("unshare exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no child of unshare in %s", children)
		}
		time.Sleep(2 * time.Millisecond)
	}
	fd, err := unix.PidfdOpen(s.initPID, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", s.initPID, err)
	}
	s.pidfd = fd
	// The namespaces are unshare's own (it unshares before it forks), except the PID
	// namespace, which its children enter.
	for _, n := range []string{"mnt", "uts", "ipc", "pid"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", s.initPID, n))
		if err != nil {
			return err
		}
		s.ns = append(s.ns, f)
	}
	if host, err := os.Stat("/proc/self/ns/mnt"); err != nil || sameFile(s.ns[0], host) {
		return errors.New("the server's PID 1 is in this machine's mount namespace")
	}
	return nil
}

// openRoot opens the server's / once its sshd runs chrooted into it.
func (s *Server) openRoot() error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/root", s.initPID))
	if err != nil {
		return err
	}
	// The PID is the server's PID 1 still (while its namespace is held, its inode
	// number is its own).
	if fi, err := os.Stat(fmt.Sprintf("/proc/%d/ns/pid", s.initPID)); err != nil || !sameFile(s.ns[3], fi) {
		f.Close()
		return errors.New("the server's PID 1 is gone")
	}
	s.root = f
	return nil
}

func sameFile(f *os.File, fi os.FileInfo) bool {
	ffi, err := f.Stat()
	return err == nil && os.SameFile(ffi, fi)
}

// Stop kills the server: its PID 1, and with it every process in its PID namespace
// (sshd, sessions, apt, daemons, commands started by Command). Its mount namespace,
// and every mount in it, ends with the last of them; Stop checks that no process of
// the server is left and that nothing is mounted under Dir, and only then removes Dir.
// Later calls return the first result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	if s.pidfd >= 0 {
		unix.PidfdSendSignal(s.pidfd, unix.SIGKILL, nil, 0)
		defer unix.Close(s.pidfd)
	}
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill() // unshare --kill-child kills PID 1
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				return fmt.Errorf("servertest: server %s: unshare (pid %d) does not exit", s.Name, s.cmd.Process.Pid)
			}
		}
	}
	var left []int
	for range 100 {
		if left = s.Processes(); len(left) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(left) > 0 {
		return fmt.Errorf("servertest: server %s: processes left after stop: %v (Dir %s kept)", s.Name, left, s.Dir)
	}
	// The last references to the mount namespace: its mounts go with it.
	if s.root != nil {
		s.root.Close()
		s.root = nil
	}
	for _, f := range s.ns {
		f.Close()
	}
	s.ns = nil
	if m := mountsUnder(s.Dir); len(m) > 0 {
		// Never expected (every mount is in the server's own namespace): lazily
		// unmount, deepest first, and keep the directory.
		for i := len(m) - 1; i >= 0; i-- {
			syscall.Unmount(m[i], syscall.MNT_DETACH)
		}
		return fmt.Errorf("servertest: server %s: mounted under %s on this machine: %s (unmounted lazily; directory kept)", s.Name, s.Dir, strings.Join(m, ", "))
	}
	return removeTree(s.Dir)
}

// Processes lists the PIDs (as this machine sees them) of the processes in the
// server's PID or mount namespace: its own, and unshare or nsenter holding it. Empty
// once the server stopped.
func (s *Server) Processes() []int {
	if len(s.ns) < 4 {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		for _, n := range []struct {
			file *os.File
			name string
		}{{s.ns[0], "mnt"}, {s.ns[3], "pid"}} {
			if fi, err := os.Stat("/proc/" + e.Name() + "/ns/" + n.name); err == nil && sameFile(n.file, fi) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// Running reports whether the server's PID 1 (sshd) is alive.
func (s *Server) Running() bool {
	if s.root == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Target returns "USER@127.0.0.1:PORT", as upds --host takes it.
func (s *Server) Target() string { return s.User + "@" + s.Addr() }

// KnownHostsLine returns the server's known_hosts line: "[127.0.0.1]:PORT ssh-ed25519 ...".
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey)
}

// SSHConfigBlock returns an ssh_config(5) block that makes alias reach the server:
// Host, HostName, Port, User, IdentityFile, IdentitiesOnly, UserKnownHostsFile and
// StrictHostKeyChecking yes.
func (s *Server) SSHConfigBlock(alias string) string {
	return fmt.Sprintf("Host %s\n    HostName %s\n    Port %d\n    User %s\n    IdentityFile %s\n    IdentitiesOnly yes\n    UserKnownHostsFile %s\n    StrictHostKeyChecking yes\n",
		alias, s.Host, s.Port, s.User, s.Identity, s.KnownHosts)
}

// Root returns the server's / as a path on this machine (/proc/PID/fd/N of this test
// process), valid until the server stops. Path lookups through it follow the server's
// mounts, but a symbolic link with an absolute target resolves on this machine:
// prefer ReadFile and Run.
func (s *Server) Root() string {
	if s.root == nil {
		return ""
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), s.root.Fd())
}

// Log returns what sshd wrote so far (its log goes to Dir/sshd.log).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "sshd.log"))
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// spawn starts cmd from one OS thread that never exits: Pdeathsig fires when the
// thread that started the process ends, which must mean this test process ended.
var spawnRequests = sync.OnceValue(func() chan func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread()
		for f := range ch {
			f()
		}
	}()
	return ch
})

func spawn(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	spawnRequests() <- func() { errc <- cmd.Start() }
	return <-errc
}

// writeOwner records this process in dir, for sweep.
func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, "owner"), []byte(processID(os.Getpid())+"\n"), 0o644)
}

// processID is "PID STARTTIME": a PID alone may be reused.
func processID(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) > 19 {
			return strconv.Itoa(pid) + " " + f[19]
		}
	}
	return ""
}

// sweep removes the fleet directories of test processes that died without cleaning
// up (killed by a test timeout, say). Their servers died with them (Pdeathsig), and so
// did their mounts; removeTree still checks.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "upds-servertest-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner"))
		if err != nil {
			continue
		}
		owner := strings.TrimSpace(string(b))
		pid, _ := strconv.Atoi(strings.Fields(owner + " 0")[0])
		if pid > 0 && processID(pid) != owner {
			removeTree(d)
		}
	}
}
