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

	"github.com/upds/upds/interp/atomicfile"
	"github.com/upds/upds/interp/storage"
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
	// BucketKeyFile is the public key kept beside repo.conf when the published tree is in a
	// bucket (Storage): what uploaders check the bucket's index with (CheckUploads), read
	// through the same channel as repo.conf.
	BucketKeyFile = "key.asc"
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
	// carries it. Optional: without one, setup.sh asks for --repo URL. With Storage, Init
	// sets it to the bucket's HTTP address (ENDPOINT/BUCKET/PREFIX) unless given one (a
	// CDN in front of the bucket, say); uploaders read the index there (CheckUploads).
	URL string
	// Storage is where the published tree lives: "" for DIR/public, or s3://BUCKET/PREFIX
	// (see storage.NewS3 for the endpoint and credentials). DIR keeps repo.conf, the
	// signing key, incoming/ and rejected/ either way.
	Storage string
	// Incoming is where uploads arrive: "" for DIR/incoming, or s3://BUCKET/PREFIX.
	Incoming string
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
	for _, f := range []struct{ name, v string }{{"Storage", c.Storage}, {"Incoming", c.Incoming}} {
		if f.v == "" {
			continue
		}
		if _, _, err := storage.ParseS3(f.v); err != nil {
			return fmt.Errorf("repo config: %s: %w", f.name, err)
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
	if c.Storage != "" {
		p.Set("Storage", c.Storage)
	}
	if c.Incoming != "" {
		p.Set("Incoming", c.Incoming)
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
		Storage:       p.Get("Storage"),
		Incoming:      p.Get("Incoming"),
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
func Init(dir string, opt InitOptions) (err error) {
	c := initConfig(opt.Config)
	if err := c.validate(); err != nil {
		return err
	}
	for _, p := range []string{ConfigFile, KeyFile, PublicKeyFile, PublicDir + "/dists"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			return withKind(ErrExists, fmt.Errorf("repo init: %s already exists; refusing to overwrite a repository", filepath.Join(dir, p)))
		}
	}
	priv, pub, err := initKey(opt)
	if err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	ctx := context.Background()
	st, err := openStores(ctx, dir, c)
	if err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	joined, err := st.checkNew(ctx, pub)
	if err != nil {
		return err
	}
	if c.URL == "" {
		c.URL = st.httpURL() // apt reads a bucket at its HTTP address
	}
	// A failed init leaves nothing behind: a directory it made is removed, and so is the
	// key it put into a bucket that held no repository (another init may use the bucket).
	_, statErr := os.Lstat(dir)
	defer func() {
		if err == nil {
			return
		}
		if errors.Is(statErr, os.ErrNotExist) {
			os.RemoveAll(dir)
		}
		if st.s3 && !joined {
			st.pub.Delete(context.Background(), "key.asc")
		}
	}()
	return initWrite(ctx, dir, c, st, priv, pub)
}

// initConfig is DefaultConfig with the fields o sets.
func initConfig(o Config) Config {
	c := DefaultConfig()
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
	c.Storage, c.Incoming = o.Storage, o.Incoming
	c.Verify = o.Verify
	return c
}

// initWrite writes a new repository: its directories and keys, the public key into the
// published tree, repo.conf, and a first publish.
func initWrite(ctx context.Context, dir string, c Config, st *stores, priv, pub []byte) error {
	if err := initDirs(dir, c, priv, pub); err != nil {
		return fmt.Errorf("repo init: %w", err)
	}
	if err := st.pub.Put(ctx, storage.Object{Name: "key.asc", Data: pub, CacheControl: "no-cache"}); err != nil {
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
	if _, err := Publish(ctx, dir, PublishOptions{}); err != nil {
		return fmt.Errorf("repo init: first publish: %w", err)
	}
	return nil
}

// initKey returns the armored private and public signing key: opt's, or a new one.
func initKey(opt InitOptions) (priv, pub []byte, err error) {
	if len(opt.ImportKey) > 0 {
		s, err := loadSigner(opt.ImportKey)
		if err != nil {
			return nil, nil, fmt.Errorf("import key: %w", err)
		}
		pub, err = armoredPublic(s.entity)
		return opt.ImportKey, pub, err
	}
	name, email := opt.KeyName, opt.KeyEmail
	if name == "" {
		name = "upds repository"
	}
	if email == "" {
		email = "repo@localhost"
	}
	return newSigningKey(name, email)
}

// initDirs makes the local directories of a repository (public/ and incoming/ only when
// they are not elsewhere) and writes the private key (and, when the published tree is in a
// bucket, the public key beside repo.conf).
func initDirs(dir string, c Config, priv, pub []byte) error {
	dirs := []string{RejectedDir}
	if c.Storage == "" {
		dirs = append(dirs, PublicDir, PublicDir+"/pool")
	}
	if c.Incoming == "" {
		dirs = append(dirs, IncomingDir)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, PrivateDir), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dir, PrivateDir), 0o700); err != nil {
		return err
	}
	// The key is written with O_EXCL: two concurrent inits cannot both succeed.
	kf, err := os.OpenFile(filepath.Join(dir, KeyFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = kf.Write(priv)
	if err == nil {
		err = kf.Sync()
	}
	if cerr := kf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if c.Storage != "" {
		return atomicfile.WriteFile(nil, filepath.Join(dir, BucketKeyFile), pub, 0o644)
	}
	return nil
}
