package repo

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/setup"
)

// SetupScriptFile is the public/ path of the script that sets a server up from the
// repository (curl -fsSL URL/setup.sh | sudo sh -s -- ROLE...).
const SetupScriptFile = "setup.sh"

// PublicURL returns the URL field of DIR/repo.conf: where clients reach public/
// (e.g. "URL: https://apt.example.com/"). It is "" when the field is not set.
func PublicURL(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return "", err
	}
	p, err := control.ParseOne(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	u := p.Get("URL")
	if u != "" {
		if err := setup.ValidURL(u); err != nil {
			return "", fmt.Errorf("%s: URL: %w", filepath.Join(dir, ConfigFile), err)
		}
	}
	return u, nil
}

// SetupScript generates public/setup.sh for the repository in dir: its public key,
// suite, component and URL (from repo.conf; without one the script asks for --repo URL).
func SetupScript(dir string) ([]byte, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	u, err := PublicURL(dir)
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		return nil, fmt.Errorf("setup.sh: %w", err)
	}
	s, err := setup.Script(setup.Source{URL: u, Suite: cfg.Suite, Components: []string{cfg.Component}, Key: key})
	if err != nil {
		return nil, fmt.Errorf("setup.sh: %w", err)
	}
	return s, nil
}

// WithSetupScript returns opt with public/setup.sh added to its ExtraFiles, so that
// every publish rewrites the script along with the indexes.
func WithSetupScript(dir string, opt PublishOptions) (PublishOptions, error) {
	s, err := SetupScript(dir)
	if err != nil {
		return opt, fmt.Errorf("publish %s: %w", dir, err)
	}
	extra := make(map[string][]byte, len(opt.ExtraFiles)+1)
	for k, v := range opt.ExtraFiles {
		extra[k] = v
	}
	extra[SetupScriptFile] = s
	opt.ExtraFiles = extra
	return opt, nil
}
