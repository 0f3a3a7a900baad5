// Package repo keeps a signed apt repository: uploads arrive in incoming/, Publish
// validates them, moves them into the pool and rewrites the signed indexes atomically.
package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/upds/upds/interp/atomicfile"
	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/setup"
)

// Layout of a repository directory.
const (
	IncomingDir = "incoming" // uploads land here
	PublicDir   = "public"   // what is served: dists/, pool/, key.asc
	RejectedDir = "rejected" // refused uploads and their .reason files
	PrivateDir  = "private"  // signing key, lock, index cache; never served
	ConfigFile  = "repo.conf"

	KeyFile       = "private/signing-key.asc" // armored private key, mode 0600
	PublicKeyFile = "public/key.asc"          // armored public key
	lockFile      = "private/publish.lock"
)

// Config is the repository configuration, stored as a deb822 paragraph in DIR/repo.conf.
type Config struct {
	Origin        string
	Label         string
	Suite         string        // "stable"
	Codename      string        // defaults to Suite
	Component     string        // "main"
	Architectures []string      // e.g. amd64 arm64 all
	Description   string        // optional
	ValidFor      time.Duration // when > 0, Release gets Valid-Until: Date + ValidFor
	// URL is where clients reach public/ (e.g. "https://apt.example.com/"); setup.sh
	// carries it. Optional: without one, setup.sh asks for --repo URL.
	URL string
	// Verify is how much of each upload Publish reads ("": VerifyBasic); PublishOptions
	// can override it.
	Verify Verify
}

// DefaultConfig returns the configuration Init uses when InitOptions leaves fields empty.
func DefaultConfig() Config {
	return Config{
		Origin:        "upds",
		Label:         "upds",
		Suite:         "stable",
		Codename:      "stable",
		Component:     "main",
		Architectures: []string{"amd64", "arm64", "all"},
	}
}

func (c Config) validate() error {
	for _, f := range []struct{ name, v string }{{"Suite", c.Suite}, {"Codename", c.Codename}, {"Component", c.Component}} {
		if f.v == "" || strings.ContainsAny(f.v, "/ \t\n") || f.v == "." || f.v == ".." {
			return fmt.Errorf("repo config: %s %q must be a non-empty word without '/'", f.name, f.v)
		}
	}
	for _, f := range []struct{ name, v string }{{"Origin", c.Origin}, {"Label", c.Label}, {"Description", c.Description}} {
		if strings.ContainsAny(f.v, "\n") {
			return fmt.Errorf("repo config: %s must be one line", f.name)
		}
	}
	if len(c.Architectures) == 0 {
		return errors.New("repo config: no architectures")
	}
	seen := map[string]bool{}
	for _, a := range c.Architectures {
		if err := control.ValidArchitecture(a); err != nil || a == "any" || a == "source" {
			return fmt.Errorf("repo config: bad architecture %q", a)
		}
		if seen[a] {
			return fmt.Errorf("repo config: architecture %q listed twice", a)
		}
		seen[a] = true
	}
	if c.ValidFor < 0 {
		return errors.New("repo config: Valid-For must not be negative")
	}
	if c.URL != "" {
		if err := setup.ValidURL(c.URL); err != nil {
			return fmt.Errorf("URL: %w", err)
		}
	}
	if _, err := ParseVerify(string(c.Verify)); err != nil {
		return fmt.Errorf("repo config: %w", err)
	}
	return nil
}

func (c Config) paragraph() control.Paragraph {
	var p control.Paragraph
	p.Set("Origin", c.Origin)
	p.Set("Label", c.Label)
	p.Set("Suite", c.Suite)
	p.Set("Codename", c.Codename)
	p.Set("Component", c.Component)
	p.Set("Architectures", strings.Join(c.Architectures, " "))
	if c.Description != "" {
		p.Set("Description", c.Description)
	}
	if c.ValidFor > 0 {
		p.Set("Valid-For", c.ValidFor.String())
	}
	if c.URL != "" {
		p.Set("URL", c.URL)
	}
	if c.Verify != "" {
		p.Set("Verify", string(c.Verify))
	}
	return p
}

// ReadConfig reads DIR/repo.conf. Without one, dir is not a repository: ErrNotRepository.
func ReadConfig(dir string) (Config, error) {
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, withKind(ErrNotRepository, fmt.Errorf("%s is not a repository (no %s; run upds repo init)", dir, ConfigFile))
		}
		return Config{}, err
	}
	p, err := control.ParseOne(bytes.NewReader(data))
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	c := Config{
		Origin:        p.Get("Origin"),
		Label:         p.Get("Label"),
		Suite:         p.Get("Suite"),
		Codename:      p.Get("Codename"),
		Component:     p.Get("Component"),
		Architectures: strings.Fields(p.Get("Architectures")),
		Description:   p.Get("Description"),
		URL:           p.Get("URL"),
		Verify:        Verify(p.Get("Verify")),
	}
	if c.Codename == "" {
		c.Codename = c.Suite
	}
	if v := p.Get("Valid-For"); v != "" {
		if c.ValidFor, err = time.ParseDuration(v); err != nil {
			return Config{}, fmt.Errorf("%s: Valid-For: %w", filepath.Join(dir, ConfigFile), err)
		}
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	return c, nil
}

// InitOptions configure Init. Empty fields take DefaultConfig values.
type InitOptions struct {
	Config
	// KeyName and KeyEmail form the user ID of a generated key
	// (default "upds repository <repo@localhost>").
	KeyName, KeyEmail string
	// ImportKey is an armored OpenPGP private key (ed25519 or RSA >= 3072, no
	// passphrase) to use instead of generating one.
	ImportKey []byte
}

// Init creates a repository in dir (which may exist but must not already hold a
// repository): incoming/, public/ (dists/, pool/, key.asc), rejected/, private/ (0700)
// with an ed25519 signing key (0600), and repo.conf. It then publishes the empty
// repository (and setup.sh) so that apt can already use it. Where a repository is (repo.conf, a key or
// public/dists exists) it refuses with ErrExists.
func Init(dir string, opt InitOptions) error {
	c := DefaultConfig()
	o := opt.Config
	if o.Origin != "" {
		c.Origin = o.Origin
	}
	if o.Label != "" {
		c.Label = o.Label
	}
	if o.Suite != "" {
		c.Suite = o.Suite
		c.Codename = o.Suite
	}
	if o.Codename != "" {
		c.Codename = o.Codename
	}
	if o.Component != "" {
		c.Component = o.Component
	}
	if len(o.Architectures) > 0 {
		c.Architectures = o.Architectures
	}
	c.Description = o.Description
	c.ValidFor = o.ValidFor
	c.URL = o.URL
	c.Verify = o.Verify
	if err := c.validate(); err != nil {
		return err
	}
	for _, p := range []string{ConfigFile, KeyFile, PublicKeyFile, PublicDir + "/dists"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			return withKind(ErrExists, fmt.Errorf("repo init: %s already exists; refusing to overwrite a repository", filepath.Join(dir, p)))
		}
	}
	var priv, pub []byte
	var err error
	if len(opt.ImportKey) > 0 {
		s, err := loadSigner(opt.ImportKey)
		if err != nil {
			return fmt.Errorf("repo init: import key: %w", err)
		}
		priv = opt.ImportKey
		if pub, err = armoredPublic(s.entity); err != nil {
			return fmt.Errorf("repo init: %w", err)
		}
	} else {
		name, email := opt.KeyName, opt.KeyEmail
		if name == "" {
			name = "upds repository"
		}
		if email == "" {
			email = "repo@localhost"
		}
		if priv, pub, err = newSigningKey(name, email); err != nil {
			return fmt.Errorf("repo init: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	for _, d := range []string{IncomingDir, PublicDir, PublicDir + "/pool", RejectedDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("repo init: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, PrivateDir), 0o700); err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	if err := os.Chmod(filepath.Join(dir, PrivateDir), 0o700); err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	// The key is written with O_EXCL: two concurrent inits cannot both succeed.
	kf, err := os.OpenFile(filepath.Join(dir, KeyFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	_, err = kf.Write(priv)
	if err == nil {
		err = kf.Sync()
	}
	if cerr := kf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("repo init: write key: %w", err)
	}
	if err := atomicfile.WriteFile(nil, filepath.Join(dir, PublicKeyFile), pub, 0o644); err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	conf, err := c.paragraph().Bytes()
	if err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	header := []byte("# upds apt repository configuration (deb822). Valid-For: e.g. 168h adds Valid-Until to Release.\n")
	if err := atomicfile.WriteFile(nil, filepath.Join(dir, ConfigFile), append(header, conf...), 0o644); err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	if _, err := Publish(context.Background(), dir, PublishOptions{}); err != nil {
		return fmt.Errorf("repo init: first publish: %w", err)
	}
	return nil
}

// lock takes the repository's exclusive publish lock, waiting while another publish holds
// it unless ctx ends first; the returned function releases it.
func lock(ctx context.Context, dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	unlock := func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return unlock, nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	// Held by another publish: wait for it in a goroutine that, if ctx ends first, takes
	// the lock when it comes free and releases it at once.
	done := make(chan error, 1)
	go func() { done <- flock(f, unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock repository: %w", err)
		}
		return unlock, nil
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				unlock()
			} else {
				f.Close()
			}
		}()
		return nil, fmt.Errorf("lock repository: %w", ctx.Err())
	}
}

// flock is unix.Flock, retried when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		if err := unix.Flock(int(f.Fd()), how); err != unix.EINTR {
			return err
		}
	}
}
