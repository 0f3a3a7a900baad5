package repo

import (
	"fmt"

	"github.com/upds/upds/stdlib/setup"
)

// SetupScriptFile is the public/ path of the script that sets a server up from the
// repository (curl -fsSL URL/setup.sh | sudo sh -s -- ROLE...). Every publish rewrites it.
const SetupScriptFile = "setup.sh"

// setupScript generates setup.sh for a repository: its public key (key.asc), and cfg's
// suite, component, URL and Origin (without a URL the script asks for --repo URL).
func setupScript(key []byte, cfg Config) ([]byte, error) {
	s, err := setup.Script(setup.Source{URL: cfg.URL, Origin: cfg.Origin, Suite: cfg.Suite, Components: []string{cfg.Component}, Key: key})
	if err != nil {
		return nil, fmt.Errorf("setup.sh: %w", err)
	}
	return s, nil
}
