package servertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// aptSource is one "deb" entry of apt's sources.
type aptSource struct {
	URI        string
	Suites     []string
	Components []string
}

// HostMirror is the Debian mirror this machine's apt uses: the first enabled "deb"
// source in /etc/apt/sources.list.d/*.sources (deb822) or /etc/apt/sources.list and
// /etc/apt/sources.list.d/*.list (one-line) whose suites include Suite and whose
// components include main; failing that, the first one whose URL ends in /debian.
// $UPDS_SERVERTEST_MIRROR overrides it.
func HostMirror() (string, error) {
	if m := os.Getenv(MirrorEnv); m != "" {
		return m, nil
	}
	var all []aptSource
	var read []string
	deb822, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range deb822 {
		if b, err := os.ReadFile(f); err == nil {
			read = append(read, f)
			all = append(all, parseDeb822(string(b))...)
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append([]string{"/etc/apt/sources.list"}, lists...) {
		if b, err := os.ReadFile(f); err == nil {
			read = append(read, f)
			all = append(all, parseOneLine(string(b))...)
		}
	}
	if m := pickMirror(all); m != "" {
		return m, nil
	}
	return "", fmt.Errorf("servertest: no Debian mirror for %s main in apt's sources (%s); set %s to a Debian mirror URL such as http://deb.debian.org/debian",
		Suite, strings.Join(read, ", "), MirrorEnv)
}

func pickMirror(all []aptSource) string {
	usable := func(s aptSource) bool {
		return (strings.HasPrefix(s.URI, "http://") || strings.HasPrefix(s.URI, "https://")) && has(s.Components, "main")
	}
	for _, s := range all {
		if usable(s) && has(s.Suites, Suite) {
			return s.URI
		}
	}
	for _, s := range all {
		if usable(s) && strings.HasSuffix(strings.TrimSuffix(s.URI, "/"), "/debian") {
			return s.URI
		}
	}
	return ""
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseDeb822 reads the "Types: deb" stanzas of a .sources file.
func parseDeb822(text string) []aptSource {
	var out []aptSource
	for _, para := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		last := ""
		for _, line := range strings.Split(para, "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if (line[0] == ' ' || line[0] == '\t') && last != "" {
				fields[last] += " " + strings.TrimSpace(line)
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if !has(strings.Fields(fields["types"]), "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, aptSource{URI: uri, Suites: strings.Fields(fields["suites"]), Components: strings.Fields(fields["components"])})
		}
	}
	return out
}

// parseOneLine reads "deb [options] URI SUITE COMPONENT..." lines.
func parseOneLine(text string) []aptSource {
	var out []aptSource
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, aptSource{URI: f[0], Suites: []string{f[1]}, Components: f[2:]})
	}
	return out
}
