package deb

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
)

// MarshalJSON writes scripts, triggers, templates, shlibs and symbols as text (not base64) for
// `upds inspect --json`.
func (i Info) MarshalJSON() ([]byte, error) {
	type plain Info
	scripts := make(map[string]string, len(i.Scripts))
	for k, v := range i.Scripts {
		scripts[k] = string(v)
	}
	return json.Marshal(struct {
		plain
		Scripts   map[string]string `json:"scripts,omitempty"`
		Triggers  string            `json:"triggers,omitempty"`
		Templates string            `json:"templates,omitempty"`
		Shlibs    string            `json:"shlibs,omitempty"`
		Symbols   string            `json:"symbols,omitempty"`
	}{plain(i), scripts, string(i.Triggers), string(i.Templates), string(i.Shlibs), string(i.Symbols)})
}

// MarshalJSON writes the mode as an octal string with the setuid/setgid/sticky digit
// ("0644", "2775") and adds the ls-style form ("drwxrwsr-x").
func (f FileInfo) MarshalJSON() ([]byte, error) {
	type plain FileInfo
	return json.Marshal(struct {
		plain
		Mode       string `json:"mode"`
		ModeString string `json:"mode_string"`
	}{plain(f), octalMode(f.Mode), ModeString(f.Type, f.Mode)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *FileInfo) UnmarshalJSON(b []byte) error {
	type plain FileInfo
	var v struct {
		plain
		Mode string `json:"mode"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	m, err := strconv.ParseUint(v.Mode, 8, 32)
	if err != nil || m > 0o7777 {
		return fmt.Errorf("file mode %q: want octal like \"0644\"", v.Mode)
	}
	*f = FileInfo(v.plain)
	f.Mode = fileMode(int64(m))
	return nil
}

func octalMode(m fs.FileMode) string { return fmt.Sprintf("%04o", unixMode(m)) }
