// Package sshconn dials SSH servers the way OpenSSH's client does by default:
// keys from ssh-agent or identity files, host keys checked against known_hosts.
package sshconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
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

// Options configure Dial. The zero value behaves like `ssh` with no configuration file.
type Options struct {
	// Identity lists private key files. Empty: ~/.ssh/id_ed25519 and ~/.ssh/id_rsa,
	// each used only if it exists. Files named here must exist.
	Identity []string
	// KnownHosts lists known_hosts files. Empty: ~/.ssh/known_hosts (a missing default
	// file means every host is unknown).
	KnownHosts []string
	// AgentSocket is the ssh-agent socket. Empty: $SSH_AUTH_SOCK.
	AgentSocket string
	// NoAgent disables ssh-agent even when SSH_AUTH_SOCK is set.
	NoAgent bool
	// Timeout bounds connect plus handshake (default DefaultTimeout).
	Timeout time.Duration
	// AcceptNew, like OpenSSH's StrictHostKeyChecking=accept-new, trusts the key of a
	// host that known_hosts does not know yet and appends it to the first known_hosts
	// file. A changed key is still refused. Off by default.
	AcceptNew bool
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

func homeFile(rel string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, rel)
}

// hostKeys builds the host key callback and the list of host key algorithms that
// known_hosts records for the target (so that a server with several host keys
// presents one we can check: golang/go#29286).
func hostKeys(t Target, files []string, acceptNew bool) (ssh.HostKeyCallback, []string, []string, error) {
	var existing []string
	if len(files) == 0 {
		if f := homeFile(".ssh/known_hosts"); f != "" {
			if _, err := os.Stat(f); err == nil {
				existing = append(existing, f)
			}
			files = []string{f}
		}
	} else {
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				if acceptNew && errors.Is(err, os.ErrNotExist) {
					continue // created when the first key is accepted
				}
				return nil, nil, nil, fmt.Errorf("known_hosts: %w", err)
			}
			existing = append(existing, f)
		}
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

// signers collects signers from the agent and the identity files. The returned
// closer releases the agent connection.
func signers(opt Options) (func() ([]ssh.Signer, error), func(), error) {
	var list []ssh.Signer
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
	files := opt.Identity
	explicit := len(files) > 0
	if !explicit {
		for _, n := range []string{".ssh/id_ed25519", ".ssh/id_rsa"} {
			if f := homeFile(n); f != "" {
				files = append(files, f)
			}
		}
	}
	var skipped []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if !explicit && errors.Is(err, os.ErrNotExist) {
				continue
			}
			closer()
			return nil, nil, fmt.Errorf("identity %s: %w", f, err)
		}
		s, err := ssh.ParsePrivateKey(data)
		if err != nil {
			var pe *ssh.PassphraseMissingError
			if errors.As(err, &pe) && !explicit {
				skipped = append(skipped, f+" (needs a passphrase: load it into ssh-agent)")
				continue
			}
			if errors.As(err, &pe) {
				closer()
				return nil, nil, fmt.Errorf("identity %s: key is passphrase-protected; load it into ssh-agent (ssh-add %s)", f, f)
			}
			closer()
			return nil, nil, fmt.Errorf("identity %s: %w", f, err)
		}
		list = append(list, s)
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
		if agentSigners != nil {
			if as, err := agentSigners(); err == nil {
				out = append(as, out...)
			}
		}
		return out, nil
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

// Dial connects and authenticates to the target. The host key must be in
// known_hosts; an unknown or changed key yields a *HostKeyError and no session.
func Dial(ctx context.Context, t Target, opt Options) (*ssh.Client, error) {
	if t.Host == "" {
		return nil, errors.New("ssh: missing host")
	}
	if t.User == "" {
		if u, err := user.Current(); err == nil {
			t.User = u.Username
		}
	}
	cb, algos, khFiles, err := hostKeys(t, opt.KnownHosts, opt.AcceptNew)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.Addr(), err)
	}
	keys, closeAgent, err := signers(opt)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.Addr(), err)
	}
	defer closeAgent()

	var hkErr *HostKeyError
	check := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
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
			if opt.AcceptNew && !hkErr.Changed && len(khFiles) > 0 {
				if err := appendKnownHost(khFiles[0], hkErr.Line); err != nil {
					return fmt.Errorf("accept new host key: %w", err)
				}
				hkErr = nil
				return nil
			}
			return hkErr
		}
		return err
	}

	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeysCallback(keys)},
		HostKeyCallback:   check,
		HostKeyAlgorithms: algos,
		Timeout:           timeout,
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", t.Addr())
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.Addr(), err)
	}
	// The handshake has no context: close the connection if ctx ends first.
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
