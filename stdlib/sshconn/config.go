package sshconn

// OpenSSH's client configuration: ~/.ssh/config and /etc/ssh/ssh_config, read with
// github.com/kevinburke/ssh_config and applied the way ssh(1) applies them.

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	sshconfig "github.com/kevinburke/ssh_config"
)

// ConfigNone as Options.ConfigFile reads no configuration file, like ssh -F none.
const ConfigNone = "none"

// SystemConfig is the system-wide client configuration, read after the user's.
const SystemConfig = "/etc/ssh/ssh_config"

// maxJumps bounds a chain of ProxyJump hosts (a loop in the configuration ends here).
const maxJumps = 8

// Home returns the home directory of the user running this process from the password
// database, as ssh(1) does ($HOME does not count); $HOME only when the lookup fails.
func Home() string {
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		return u.HomeDir
	}
	h, _ := os.UserHomeDir()
	return h
}

// home is opt.Home or the passwd home.
func (opt Options) home() string {
	if opt.Home != "" {
		return opt.Home
	}
	return Home()
}

// ExpandHome expands a leading "~/" (or a lone "~") with home.
func ExpandHome(p, home string) string {
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok && home != "" {
		return filepath.Join(home, rest)
	}
	return p
}

// Resolved is a Target with the client configuration applied, as `ssh -G` shows it.
type Resolved struct {
	// Target is where to connect: HostName, Port and User from the configuration
	// unless the Target given named them.
	Target Target
	// Alias is the host as given, which Host patterns match ("web1").
	Alias string
	// Identity lists IdentityFile entries (expanded; missing files are skipped).
	Identity []string
	// IdentitiesOnly limits the keys offered to the identity files.
	IdentitiesOnly bool
	// KnownHosts lists UserKnownHostsFile entries (expanded).
	KnownHosts []string
	// AcceptNew is StrictHostKeyChecking accept-new.
	AcceptNew bool
	// ProxyJump lists the hosts to connect through, in order ([user@]host[:port] each,
	// resolved with the configuration again when dialed).
	ProxyJump []Target
}

// clientConfig is the parsed configuration files, the first taking precedence.
type clientConfig struct {
	files []*sshconfig.Config
	names []string
}

// loadConfig reads file (ssh -F), or ~/.ssh/config and SystemConfig when file is "".
// Missing default files are skipped; a missing named file is an error.
func loadConfig(file, home string) (*clientConfig, error) {
	c := &clientConfig{}
	if file == ConfigNone {
		return c, nil
	}
	names := []string{file}
	if file == "" {
		names = []string{filepath.Join(home, ".ssh", "config"), SystemConfig}
	}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			if file == "" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("ssh config: %w", err)
		}
		cfg, err := sshconfig.DecodeBytes(data)
		if err != nil {
			return nil, fmt.Errorf("ssh config %s: %w (use --ssh-config none to read no configuration)", n, err)
		}
		c.files, c.names = append(c.files, cfg), append(c.names, n)
	}
	return c, nil
}

// get returns the first value of key for alias: the user's file wins over the system's.
func (c *clientConfig) get(alias, key string) (string, error) {
	for i, f := range c.files {
		v, err := f.Get(alias, key)
		if err != nil {
			return "", fmt.Errorf("ssh config %s: %w", c.names[i], err)
		}
		if v != "" {
			return v, nil
		}
	}
	return "", nil
}

// getAll returns every value of key for alias, in order (IdentityFile accumulates).
func (c *clientConfig) getAll(alias, key string) ([]string, error) {
	var out []string
	for i, f := range c.files {
		v, err := f.GetAll(alias, key)
		if err != nil {
			return nil, fmt.Errorf("ssh config %s: %w", c.names[i], err)
		}
		out = append(out, v...)
	}
	return out, nil
}

// Resolve applies the client configuration (opt.ConfigFile, or ~/.ssh/config and
// /etc/ssh/ssh_config) to t: Host and Match blocks matching t.Host give HostName, Port,
// User, IdentityFile, IdentitiesOnly, UserKnownHostsFile, StrictHostKeyChecking
// accept-new and ProxyJump. What t names itself (user@, :port) wins, as on ssh's
// command line.
func Resolve(t Target, opt Options) (Resolved, error) {
	home := opt.home()
	cfg, err := loadConfig(opt.ConfigFile, home)
	if err != nil {
		return Resolved{}, err
	}
	return cfg.resolve(t, home)
}

func (c *clientConfig) resolve(t Target, home string) (Resolved, error) {
	r := Resolved{Target: t, Alias: t.Host}
	var err error
	get := func(key string) string {
		if err != nil {
			return ""
		}
		var v string
		v, err = c.get(r.Alias, key)
		return strings.TrimSpace(v)
	}
	if hn := get("HostName"); hn != "" {
		r.Target.Host = strings.ReplaceAll(strings.ReplaceAll(hn, "%h", r.Alias), "%%", "%")
	}
	if p := get("Port"); p != "" && t.Port == 0 {
		n, perr := strconv.Atoi(p)
		if perr != nil || n <= 0 || n > 65535 {
			return r, fmt.Errorf("ssh config: Port %q for %s", p, r.Alias)
		}
		r.Target.Port = n
	}
	if u := get("User"); u != "" && t.User == "" {
		r.Target.User = u
	}
	if r.Target.User == "" {
		if u, uerr := user.Current(); uerr == nil {
			r.Target.User = u.Username
		}
	}
	r.IdentitiesOnly = strings.EqualFold(get("IdentitiesOnly"), "yes")
	r.AcceptNew = strings.EqualFold(get("StrictHostKeyChecking"), "accept-new")
	kh := get("UserKnownHostsFile")
	jump := get("ProxyJump")
	if err != nil {
		return r, err
	}
	exp := expander{r: r, home: home}
	for _, f := range strings.Fields(kh) {
		if f != ConfigNone {
			r.KnownHosts = append(r.KnownHosts, exp.path(f))
		}
	}
	ids, err := c.getAll(r.Alias, "IdentityFile")
	if err != nil {
		return r, err
	}
	for _, f := range ids {
		if f = strings.TrimSpace(f); f != "" && f != ConfigNone {
			r.Identity = append(r.Identity, exp.path(f))
		}
	}
	if r.ProxyJump, err = parseJumps(jump); err != nil {
		return r, fmt.Errorf("ssh config: ProxyJump for %s: %w", r.Alias, err)
	}
	return r, nil
}

// parseJumps reads a ProxyJump value: "none", or comma-separated [user@]host[:port] or
// ssh://[user@]host[:port].
func parseJumps(v string) ([]Target, error) {
	if v == "" || strings.EqualFold(v, ConfigNone) {
		return nil, nil
	}
	var out []Target
	for _, h := range strings.Split(v, ",") {
		h = strings.TrimSpace(h)
		if h == "" || strings.ContainsAny(h, " \t") {
			return nil, fmt.Errorf("%q: want comma-separated [user@]host[:port]", v)
		}
		if rest, ok := strings.CutPrefix(h, "ssh://"); ok {
			u, err := url.Parse("ssh://" + rest)
			if err != nil || (u.Path != "" && u.Path != "/") {
				return nil, fmt.Errorf("%q: want ssh://[user@]host[:port]", h)
			}
			h = u.Host
			if u.User != nil {
				h = u.User.Username() + "@" + h
			}
		}
		t, err := ParseTarget(h)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(out) > maxJumps {
		return nil, fmt.Errorf("%d hosts, at most %d", len(out), maxJumps)
	}
	return out, nil
}

// expander expands the tokens of ssh_config(5) in file names: ~, %d (home), %h (host
// name), %n (alias), %p (port), %r (remote user), %u (local user), %i (uid), %l (local
// host name), %%.
type expander struct {
	r    Resolved
	home string
}

func (e expander) path(p string) string {
	p = ExpandHome(p, e.home)
	if !strings.Contains(p, "%") {
		return p
	}
	local := ""
	if u, err := user.Current(); err == nil {
		local = u.Username
	}
	hostname, _ := os.Hostname()
	port := e.r.Target.Port
	if port == 0 {
		port = DefaultPort
	}
	tokens := map[byte]string{'d': e.home, 'h': e.r.Target.Host, 'n': e.r.Alias, 'p': strconv.Itoa(port),
		'r': e.r.Target.User, 'u': local, 'i': strconv.Itoa(os.Getuid()), 'l': hostname, '%': "%"}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+1 < len(p) {
			if v, ok := tokens[p[i+1]]; ok {
				b.WriteString(v)
				i++
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
