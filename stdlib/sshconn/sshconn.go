// Package sshconn dials SSH servers the way OpenSSH's client does by default:
// keys from ssh-agent or identity files, host keys checked against known_hosts.
package sshconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DefaultPort is the SSH port used when a Target has none.
const DefaultPort = 22

// DefaultTimeout bounds the TCP connect plus the SSH handshake when Options.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Target is the remote end: user@host:port.
type Target struct {
	User string // empty: the local user name
	Host string
	Port int // 0: DefaultPort
}

// ParseTarget parses "[user@]host[:port]" (IPv6 hosts in brackets: "user@[::1]:2222").
func ParseTarget(s string) (Target, error) {
	var t Target
	if i := strings.LastIndex(s, "@"); i >= 0 {
		t.User, s = s[:i], s[i+1:]
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// no port
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		port = ""
	}
	if host == "" {
		return Target{}, fmt.Errorf("ssh target %q: missing host", s)
	}
	t.Host = host
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return Target{}, fmt.Errorf("ssh target %q: bad port %q", s, port)
		}
		t.Port = p
	}
	return t, nil
}

// Addr returns "host:port" with the default port filled in.
func (t Target) Addr() string {
	p := t.Port
	if p == 0 {
		p = DefaultPort
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(p))
}

// String returns "user@host:port" (user omitted when empty).
func (t Target) String() string {
	if t.User == "" {
		return t.Addr()
	}
	return t.User + "@" + t.Addr()
}

// Options configure Dial. The zero value behaves like `ssh` with the user's
// configuration: ~/.ssh/config and /etc/ssh/ssh_config (see Resolve), keys from
// ssh-agent and ~/.ssh, host keys checked against ~/.ssh/known_hosts, where ~ is the
// home directory of the password database, as for ssh(1).
type Options struct {
	// Identity lists private key files, which must exist. They come first; the
	// configuration's IdentityFile entries follow. With neither: ~/.ssh/id_ed25519 and
	// ~/.ssh/id_rsa, each used only if it exists.
	Identity []string
	// KnownHosts lists known_hosts files. Empty: the configuration's
	// UserKnownHostsFile, else ~/.ssh/known_hosts (a missing default file means every
	// host is unknown).
	KnownHosts []string
	// AgentSocket is the ssh-agent socket. Empty: $SSH_AUTH_SOCK.
	AgentSocket string
	// NoAgent disables ssh-agent even when SSH_AUTH_SOCK is set.
	NoAgent bool
	// Timeout bounds connect plus handshake (default DefaultTimeout), per host of a
	// ProxyJump chain.
	Timeout time.Duration
	// AcceptNew, like OpenSSH's StrictHostKeyChecking=accept-new, trusts the key of a
	// host that known_hosts does not know yet and appends it to the first known_hosts
	// file. A changed key is still refused. Off by default; the configuration may set it
	// for a host.
	AcceptNew bool
	// ConfigFile is the ssh_config(5) file to read instead of ~/.ssh/config and
	// /etc/ssh/ssh_config, like ssh -F; ConfigNone reads none.
	ConfigFile string
	// Home is the directory whose .ssh/ holds the default files (default: Home()).
	Home string
}

// HostKeyError is returned when the server's host key is not in known_hosts (Unknown)
// or differs from the recorded one (Changed). Its message shows the presented key's
// fingerprint and the exact known_hosts line to add.
type HostKeyError struct {
	Target      Target
	Fingerprint string   // SHA256:... of the key the server presented
	Line        string   // the known_hosts line for that key
	KnownHosts  []string // files that were consulted
	Changed     bool     // known_hosts has a different key for this host
	Known       []string // "FILE:LINE" of the recorded keys (when Changed)
}

func (e *HostKeyError) Error() string {
	file := "~/.ssh/known_hosts"
	if len(e.KnownHosts) > 0 {
		file = e.KnownHosts[0]
	}
	if e.Changed {
		return fmt.Sprintf("ssh %s: HOST KEY CHANGED: the server presented %s, which does not match %s; "+
			"refusing to connect (someone may be intercepting the connection). "+
			"If the change is expected, replace the recorded key with this line in %s:\n%s",
			e.Target.Addr(), e.Fingerprint, strings.Join(e.Known, ", "), file, e.Line)
	}
	return fmt.Sprintf("ssh %s: host key unknown: the server presented %s, which is not in %s; "+
		"refusing to connect. Check the fingerprint (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the server), "+
		"then add this line to %s:\n%s",
		e.Target.Addr(), e.Fingerprint, strings.Join(e.KnownHosts, ", "), file, e.Line)
}

// hostKeys builds the host key callback and the list of host key algorithms that
// known_hosts records for the target (so that a server with several host keys
// presents one we can check: golang/go#29286).
func hostKeys(t Target, files []string, mustExist, acceptNew bool) (ssh.HostKeyCallback, []string, []string, error) {
	var existing []string
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			if !mustExist || acceptNew && errors.Is(err, os.ErrNotExist) {
				continue // a default file, or one created when the first key is accepted
			}
			return nil, nil, nil, fmt.Errorf("known_hosts: %w", err)
		}
		existing = append(existing, f)
	}
	var cb ssh.HostKeyCallback
	if len(existing) == 0 {
		cb = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
	} else {
		var err error
		cb, err = knownhosts.New(existing...)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("known_hosts: %w", err)
		}
	}
	// Probe with a key no host has: the KeyError lists every key recorded for the host.
	var algos []string
	err := cb(knownhosts.Normalize(t.Addr()), probeAddr(t), probeKey{})
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		seen := map[string]bool{}
		for _, k := range ke.Want {
			for _, a := range algorithmsFor(k.Key.Type()) {
				if !seen[a] {
					seen[a] = true
					algos = append(algos, a)
				}
			}
		}
	}
	if len(algos) == 0 {
		// Nothing recorded: ask for keys in OpenSSH's order, so the line we suggest
		// is the one `ssh` would record.
		algos = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
			ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return cb, algos, files, nil
}

func probeAddr(t Target) net.Addr {
	p := t.Port
	if p == 0 {
		p = DefaultPort
	}
	if ip := net.ParseIP(t.Host); ip != nil {
		return &net.TCPAddr{IP: ip, Port: p}
	}
	return &net.TCPAddr{IP: net.IPv4zero, Port: p}
}

// probeKey is a public key that matches nothing.
type probeKey struct{}

func (probeKey) Type() string                        { return "upds-probe" }
func (probeKey) Marshal() []byte                     { return []byte("upds-probe-key") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// identityFile is a private key file to offer; a required one must exist and load.
type identityFile struct {
	path     string
	required bool
}

// identityFiles lists opt.Identity (required), then the configuration's IdentityFile
// entries, or the default files when there are neither.
func identityFiles(opt Options, r Resolved) []identityFile {
	var files []identityFile
	for _, f := range opt.Identity {
		files = append(files, identityFile{f, true})
	}
	for _, f := range r.Identity {
		files = append(files, identityFile{f, false})
	}
	if len(files) == 0 {
		for _, n := range []string{"id_ed25519", "id_rsa"} {
			files = append(files, identityFile{filepath.Join(opt.home(), ".ssh", n), false})
		}
	}
	return files
}

// signers collects signers from the agent and the identity files. With IdentitiesOnly
// the agent offers only the keys of those files (their .pub beside a passphrase-protected
// key). The returned closer releases the agent connection.
func signers(opt Options, r Resolved) (func() ([]ssh.Signer, error), func(), error) {
	var list []ssh.Signer
	var pubs [][]byte // public keys of the identity files
	var skipped []string
	for _, f := range identityFiles(opt, r) {
		data, err := os.ReadFile(f.path)
		if err != nil {
			if !f.required && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, nil, fmt.Errorf("identity %s: %w", f.path, err)
		}
		s, err := ssh.ParsePrivateKey(data)
		var pe *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &pe) && f.required:
			return nil, nil, fmt.Errorf("identity %s: key is passphrase-protected; load it into ssh-agent (ssh-add %s)", f.path, f.path)
		case errors.As(err, &pe):
			skipped = append(skipped, f.path+" (needs a passphrase: load it into ssh-agent)")
			if pub, err := os.ReadFile(f.path + ".pub"); err == nil {
				if k, _, _, _, err := ssh.ParseAuthorizedKey(pub); err == nil {
					pubs = append(pubs, k.Marshal())
				}
			}
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("identity %s: %w", f.path, err)
		}
		list = append(list, s)
		pubs = append(pubs, s.PublicKey().Marshal())
	}
	closer := func() {}
	var agentSigners func() ([]ssh.Signer, error)
	sock := opt.AgentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if !opt.NoAgent && sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			closer = func() { c.Close() }
			agentSigners = agent.NewClient(c).Signers
		}
	}
	if agentSigners == nil && len(list) == 0 {
		msg := "no SSH key: start ssh-agent (SSH_AUTH_SOCK) or create ~/.ssh/id_ed25519, or name an identity file"
		if len(skipped) > 0 {
			msg += "; skipped " + strings.Join(skipped, ", ")
		}
		return nil, nil, errors.New(msg)
	}
	return func() ([]ssh.Signer, error) {
		out := append([]ssh.Signer(nil), list...)
		if agentSigners == nil {
			return out, nil
		}
		as, err := agentSigners()
		if err != nil {
			return out, nil
		}
		var keep []ssh.Signer
		for _, a := range as {
			if !r.IdentitiesOnly || slices.ContainsFunc(pubs, func(p []byte) bool { return bytes.Equal(p, a.PublicKey().Marshal()) }) {
				keep = append(keep, a)
			}
		}
		return append(keep, out...), nil
	}, closer, nil
}

// appendKnownHost adds a line to a known_hosts file, creating it (0600) and its
// directory (0700) when missing.
func appendKnownHost(file, line string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Dial connects and authenticates to the target, with the client configuration applied
// (see Resolve): an alias such as "web1" reaches its HostName, Port and User, through
// its ProxyJump hosts. Every host key must be in known_hosts; an unknown or changed key
// yields a *HostKeyError and no session. Closing the client closes the connections to
// the jump hosts too.
func Dial(ctx context.Context, t Target, opt Options) (*ssh.Client, error) {
	if t.Host == "" {
		return nil, errors.New("ssh: missing host")
	}
	cfg, err := loadConfig(opt.ConfigFile, opt.home())
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.Host, err)
	}
	return (&dialer{cfg: cfg, opt: opt}).dial(ctx, t, 0, nil)
}

// dialer connects to hosts with one configuration.
type dialer struct {
	cfg *clientConfig
	opt Options
}

// dial connects to t: through via when it is set, else through t's ProxyJump hosts
// (depth counts the hosts of the chain so far), else directly.
func (d *dialer) dial(ctx context.Context, t Target, depth int, via *ssh.Client) (*ssh.Client, error) {
	r, err := d.cfg.resolve(t, d.opt.home())
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.Host, err)
	}
	if via == nil && len(r.ProxyJump) > 0 {
		if depth+len(r.ProxyJump) > maxJumps {
			return nil, fmt.Errorf("ssh %s: more than %d ProxyJump hosts (a loop in the configuration?)", r.Alias, maxJumps)
		}
		for i, hop := range r.ProxyJump {
			// The first hop is reached with its own configuration; each next through the last.
			next, err := d.dial(ctx, hop, depth+i+1, via)
			if err != nil {
				return nil, fmt.Errorf("ssh %s: ProxyJump: %w", r.Alias, err)
			}
			via = next
		}
	}
	timeout := d.opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	if via != nil {
		conn, err = via.DialContext(dctx, "tcp", r.Target.Addr())
	} else {
		var nd net.Dialer
		conn, err = nd.DialContext(dctx, "tcp", r.Target.Addr())
	}
	var c *ssh.Client
	if err != nil {
		err = fmt.Errorf("ssh %s: %w", r.Target.Addr(), err)
	} else {
		c, err = d.handshake(ctx, dctx, conn, r)
	}
	if err != nil {
		if via != nil {
			via.Close()
		}
		return nil, err
	}
	if via != nil {
		go func() { c.Wait(); via.Close() }()
	}
	return c, nil
}

// handshake authenticates over conn, checking the host key; dctx bounds it.
func (d *dialer) handshake(ctx, dctx context.Context, conn net.Conn, r Resolved) (*ssh.Client, error) {
	t, opt := r.Target, d.opt
	files, mustExist := opt.KnownHosts, true
	if len(files) == 0 {
		files, mustExist = r.KnownHosts, false
	}
	if len(files) == 0 {
		files = []string{filepath.Join(opt.home(), ".ssh", "known_hosts")}
	}
	acceptNew := opt.AcceptNew || r.AcceptNew
	cb, algos, khFiles, err := hostKeys(t, files, mustExist, acceptNew)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh %s: %w", t.Addr(), err)
	}
	keys, closeAgent, err := signers(opt, r)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh %s: %w", t.Addr(), err)
	}
	defer closeAgent()

	var hkErr *HostKeyError
	check := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		hkErr = &HostKeyError{
			Target:      t,
			Fingerprint: ssh.FingerprintSHA256(key),
			Line:        knownhosts.Line([]string{knownhosts.Normalize(t.Addr())}, key),
			KnownHosts:  khFiles,
			Changed:     len(ke.Want) > 0,
		}
		for _, w := range ke.Want {
			hkErr.Known = append(hkErr.Known, fmt.Sprintf("%s:%d (%s %s)", w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key)))
		}
		if acceptNew && !hkErr.Changed && len(khFiles) > 0 {
			if err := appendKnownHost(khFiles[0], hkErr.Line); err != nil {
				return fmt.Errorf("accept new host key: %w", err)
			}
			hkErr = nil
			return nil
		}
		return hkErr
	}
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeysCallback(keys)},
		HostKeyCallback:   check,
		HostKeyAlgorithms: algos,
	}
	// The handshake has no context: close the connection if dctx ends first.
	deadline, _ := dctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(dctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr(), cfg)
	stopped := stop()
	if err != nil {
		conn.Close()
		if hkErr != nil {
			return nil, hkErr
		}
		if !stopped && ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s: %w", t.Addr(), ctx.Err())
		}
		return nil, fmt.Errorf("ssh %s@%s: %w", t.User, t.Addr(), err)
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}
