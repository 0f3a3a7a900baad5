package venv

import (
	"fmt"
	"strconv"
	"strings"
)

// ParsePyprojectDependencies returns the [project] dependencies array of a pyproject.toml.
// It understands the TOML a pyproject uses for it: a [project] table, a dependencies key whose
// value is an array of basic ("...") or literal ('...') strings over one or several lines,
// comments and trailing commas. The project itself is never installed: only its dependencies.
// It is an error when dependencies are declared dynamic or written in a form it does not read.
func ParsePyprojectDependencies(data []byte) ([]string, error) {
	src := string(data)
	table := ""
	found := false
	var deps []string
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(stripComment(lines[i]))
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			table = strings.TrimSpace(strings.Trim(line, "[]"))
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected key = value", i+1)
		}
		key = strings.Trim(strings.TrimSpace(key), `"'`)
		value = strings.TrimSpace(value)
		fullKey := key
		if table != "" {
			fullKey = table + "." + key
		}
		switch fullKey {
		case "project.dynamic":
			arr, _, err := readArray(lines, i, value)
			if err != nil {
				return nil, fmt.Errorf("line %d: project.dynamic: %w", i+1, err)
			}
			for _, d := range arr {
				if d == "dependencies" {
					return nil, fmt.Errorf("line %d: [project] dependencies are dynamic (computed by the build backend): list them in a requirements file instead", i+1)
				}
			}
		case "project.dependencies":
			arr, end, err := readArray(lines, i, value)
			if err != nil {
				return nil, fmt.Errorf("line %d: project.dependencies: %w", i+1, err)
			}
			deps, found, i = arr, true, end
		case "project":
			if strings.HasPrefix(value, "{") {
				return nil, fmt.Errorf("line %d: an inline [project] table is not supported: write a [project] section", i+1)
			}
			fallthrough
		default:
			end, err := skipValue(lines, i, value)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", i+1, fullKey, err)
			}
			i = end
		}
	}
	if !found {
		return nil, fmt.Errorf("no [project] dependencies array")
	}
	return deps, nil
}

// readArray reads a string array that starts in value (the rest of line i) and may continue on
// the following lines. It returns the strings and the index of the last line it used.
func readArray(lines []string, i int, value string) ([]string, int, error) {
	if !strings.HasPrefix(value, "[") {
		return nil, i, fmt.Errorf("expected an array, got %q", value)
	}
	text := value[1:]
	var out []string
	for {
		for {
			text = strings.TrimLeft(text, " \t\r,")
			if text == "" || strings.HasPrefix(text, "#") {
				break
			}
			if text[0] == ']' {
				return out, i, nil
			}
			s, rest, err := readString(text)
			if err != nil {
				return nil, i, fmt.Errorf("line %d: %w", i+1, err)
			}
			out = append(out, s)
			text = strings.TrimLeft(rest, " \t\r")
			if text != "" && text[0] != ',' && text[0] != ']' && text[0] != '#' {
				return nil, i, fmt.Errorf("line %d: unexpected %q after a string", i+1, text)
			}
		}
		i++
		if i >= len(lines) {
			return nil, i, fmt.Errorf("unterminated array")
		}
		text = lines[i]
	}
}

// readString reads one TOML basic or literal string at the start of text.
func readString(text string) (string, string, error) {
	switch {
	case strings.HasPrefix(text, `"""`), strings.HasPrefix(text, `'''`):
		return "", "", fmt.Errorf("multi-line strings are not supported in dependencies")
	case text[0] == '\'':
		end := strings.IndexByte(text[1:], '\'')
		if end < 0 {
			return "", "", fmt.Errorf("unterminated string")
		}
		return text[1 : end+1], text[end+2:], nil
	case text[0] == '"':
		for j := 1; j < len(text); j++ {
			switch text[j] {
			case '\\':
				j++
			case '"':
				s, err := strconv.Unquote(text[:j+1])
				if err != nil {
					return "", "", fmt.Errorf("bad string %s: %w", text[:j+1], err)
				}
				return s, text[j+1:], nil
			}
		}
		return "", "", fmt.Errorf("unterminated string")
	}
	return "", "", fmt.Errorf("expected a string, got %q", text)
}

// stripComment removes a # comment that is not inside a string.
func stripComment(line string) string {
	var quote byte
	for j := 0; j < len(line); j++ {
		c := line[j]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				j++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return line[:j]
		}
	}
	return line
}

// skipValue finds the last line of a value that starts in value (the rest of line i): arrays
// and inline tables may span lines, and so may multi-line strings.
func skipValue(lines []string, i int, value string) (int, error) {
	depth := 0
	text := value
	quote := "" // the open string's delimiter: ", ', """ or '''
	for {
		for j := 0; j < len(text); j++ {
			c := text[j]
			if quote != "" {
				if c == '\\' && quote[0] == '"' {
					j++
					continue
				}
				if strings.HasPrefix(text[j:], quote) {
					j += len(quote) - 1
					quote = ""
				}
				continue
			}
			switch {
			case strings.HasPrefix(text[j:], `"""`), strings.HasPrefix(text[j:], `'''`):
				quote = text[j : j+3]
				j += 2
			case c == '"' || c == '\'':
				quote = string(c)
			case c == '[' || c == '{':
				depth++
			case c == ']' || c == '}':
				depth--
			case c == '#':
				j = len(text)
			}
		}
		if len(quote) == 1 {
			return i, fmt.Errorf("unterminated string")
		}
		if depth <= 0 && quote == "" {
			return i, nil
		}
		i++
		if i >= len(lines) {
			return i, fmt.Errorf("unterminated value")
		}
		text = lines[i]
	}
}
