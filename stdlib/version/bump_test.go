package version

import (
	"fmt"
	"testing"
)

func TestBump(t *testing.T) {
	tests := []struct {
		in   string
		part Part
		want string // want "" means an error
	}{
		{"1.9", "minor", "1.10"},
		{"1.9", "major", "2.0"},
		{"1.9", "patch", "1.9.1"},
		{"1", "minor", "1.1"},
		{"1", "major", "2"},
		{"1", "patch", "1.0.1"},
		{"1.4.2", "major", "2.0.0"},
		{"1.4.2", "minor", "1.5.0"},
		{"1.4.2", "patch", "1.4.3"},
		{"1.4.2.7", "minor", "1.5.0.0"},
		{"1.4.2-3", "patch", "1.4.3"},
		{"2:1.4.2-3", "minor", "2:1.5.0"},
		{"2:1.4.2-3", "revision", "2:1.4.2-4"},
		{"2.0.0", "revision", "2.0.0-1"},
		{"2.0.0-1", "revision", "2.0.0-2"},
		{"2.0.0-9", "revision", "2.0.0-10"},
		{"2.0.0-09", "revision", "2.0.0-10"},
		{"2.0.0-1ubuntu2", "revision", "2.0.0-1ubuntu3"},
		{"2.0.0-0ubuntu1~22.04.1", "revision", "2.0.0-0ubuntu1~22.04.2"},
		{"2.0.0-1~bpo12+1", "revision", "2.0.0-1~bpo12+2"},
		{"2.0.0-a", "revision", "2.0.0-a1"},
		{"2.0.0-~", "revision", "2.0.0-~1"},
		{"1.2~rc1", "patch", "1.2.1"},
		{"1.2~rc1", "minor", "1.3"},
		{"1.2~rc1", "major", "2.0"},
		{"2024.01.05+git", "patch", "2024.01.06"},
		{"2024.01.05+git", "minor", "2024.02.00"},
		{"2024.01.05+git", "major", "2025.00.00"},
		{"1.0a", "minor", "1.1"},
		{"1.99", "minor", "1.100"},
		{"1.10.31", "major", "2.0.0"},
		{"1.09", "minor", "1.10"},
		{"9", "major", "10"},
		{"99999999999999999999999", "major", "100000000000000000000000"},
		{"1:2:3", "major", "1:3"},
		{"1.9.x", "patch", ""},   // 1.9.1 would sort before 1.9.x
		{"0:1.9:x", "patch", ""}, // ':' sorts after '.'
		{"1.0", "micro", ""},
		{"1.0", "", ""},
	}
	for _, tt := range tests {
		in := MustParse(tt.in)
		got, err := Bump(in, tt.part)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Bump(%s, %q) = %s; want an error", tt.in, tt.part, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("Bump(%s, %q) = %s, %v; want %s", tt.in, tt.part, got, err, tt.want)
			continue
		}
		if Compare(got, in) <= 0 {
			t.Errorf("Bump(%s, %q) = %s does not sort after the input", tt.in, tt.part, got)
		}
		if _, err := Parse(got.String()); err != nil {
			t.Errorf("Bump(%s, %q) = %s is not a valid version: %v", tt.in, tt.part, got, err)
		}
	}
	// An upstream version without a leading number (only ParseLenient accepts it).
	if got, err := Bump(Version{Upstream: "abc"}, Minor); err == nil {
		t.Errorf("Bump(abc, minor) = %s; want an error", got)
	}
	if got, err := Bump(Version{Upstream: "abc"}, Revision); err != nil || got.String() != "abc-1" {
		t.Errorf("Bump(abc, revision) = %s, %v; want abc-1", got, err)
	}
}

func TestParsePart(t *testing.T) {
	if got := fmt.Sprint(Parts()); got != "[major minor patch revision]" {
		t.Errorf("Parts() = %s", got)
	}
	for _, p := range Parts() {
		if got, err := ParsePart(string(p)); err != nil || got != p {
			t.Errorf("ParsePart(%q) = %q, %v", p, got, err)
		}
	}
	for _, s := range []string{"micro", "", "Major"} {
		want := fmt.Sprintf("unknown part %q (want major, minor, patch or revision)", s)
		if _, err := ParsePart(s); err == nil || err.Error() != want {
			t.Errorf("ParsePart(%q) error = %v, want %q", s, err, want)
		}
	}
	if _, err := Bump(MustParse("1.0"), "micro"); err == nil || err.Error() != `bump 1.0: unknown part "micro" (want major, minor, patch or revision)` {
		t.Errorf("Bump(micro) error = %v", err)
	}
}
