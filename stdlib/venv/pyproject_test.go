package venv

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePyprojectDependencies(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
		err       string
	}{
		{"one line", "[project]\nname = \"x\"\ndependencies = [\"a>=1\", 'b[extra]; python_version >= \"3.8\"']\n",
			[]string{"a>=1", `b[extra]; python_version >= "3.8"`}, ""},
		{"multi-line with comments", `[build-system]
requires = [
    "setuptools>=61", # a comment with "quotes"
]

[project]
name = "x"
authors = [
  {name = "A", email = "a@example.org"},
]
description = """
dependencies = ["fake"]
[tool.fake]
"""
dependencies = [
    "flask==3.0.0",  # web
    # a whole-line comment
    "gunicorn",
]

[project.optional-dependencies]
dev = ["pytest"]
`, []string{"flask==3.0.0", "gunicorn"}, ""},
		{"empty", "[project]\ndependencies = []\n", []string{}, ""},
		{"escapes", "[project]\ndependencies = [\"a\\u0062\"]\n", []string{"ab"}, ""},
		{"dotted key", "project.dependencies = [\"a\"]\n", []string{"a"}, ""},
		{"missing", "[project]\nname = \"x\"\n", nil, "no [project] dependencies"},
		{"other table", "[tool.x]\ndependencies = [\"a\"]\n", nil, "no [project] dependencies"},
		{"dynamic", "[project]\ndynamic = [\"version\", \"dependencies\"]\n", nil, "dynamic"},
		{"unterminated", "[project]\ndependencies = [\"a\",\n", nil, "unterminated"},
		{"not strings", "[project]\ndependencies = [1]\n", nil, "expected a string"},
		{"inline table", "project = {name = \"x\"}\n", nil, "inline [project] table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePyprojectDependencies([]byte(tc.src))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLogicalLines(t *testing.T) {
	got := logicalLines("# comment\n\na==1 \\\n  --hash=sha256:x  # trailing\nhttp://h/x#egg=y\n-r other.txt\n")
	want := []logicalLine{{3, "a==1    --hash=sha256:x"}, {5, "http://h/x#egg=y"}, {6, "-r other.txt"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
