package repo

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/upds/upds/stdlib/setup"
)

// SetupScriptFile is the public/ path of the script that sets a server up from the
// repository (curl -fsSL URL/setup.sh | sudo sh -s -- ROLE...). Every publish rewrites it.
const SetupScriptFile = "setup.sh"

// setupScript generates public/setup.sh for the repository in dir: its public key, and
// cfg's suite, component and URL (without one the script asks for --repo URL).
func setupScript(dir string, cfg Config) ([]byte, error) {
	key, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		return nil, fmt.Errorf("setup.sh: %w", err)
	}
	s, err := setup.Script(setup.Source{URL: cfg.URL, Origin: cfg.Origin, Suite: cfg.Suite, Components: []string{cfg.Component}, Key: key})
	if err != nil {
		return nil, fmt.Errorf("setup.sh: %w", err)
	}
	return s, nil
}
