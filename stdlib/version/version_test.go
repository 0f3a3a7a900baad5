package version

import (
	"errors"
	"testing"
)

// parseTests are checked against Parse here and against dpkg --validate-version in
// TestParseOracle.
var parseTests = []struct {
	in      string
	want    Version
	errMsg  string // dpkg's message; "" means valid
	warning bool
}{
	{in: "1.0", want: Version{0, "1.0", ""}},
	{in: "1.0-1", want: Version{0, "1.0", "1"}},
	{in: "2:1.0-1", want: Version{2, "1.0", "1"}},
	{in: " 1.0\t", want: Version{0, "1.0", ""}},
	{in: "1.0-1-2", want: Version{0, "1.0-1", "2"}},
	{in: "1:2:3", want: Version{1, "2:3", ""}},
	{in: "01:1", want: Version{1, "1", ""}},
	{in: "+1:1.0", want: Version{1, "1.0", ""}},
	{in: "-0:1.0", want: Version{0, "1.0", ""}},
	{in: "\n1:0", want: Version{1, "0", ""}},
	{in: "2147483647:1", want: Version{2147483647, "1", ""}},
	{in: "1.0~rc1+dfsg-0ubuntu1~22.04.1", want: Version{0, "1.0~rc1+dfsg", "0ubuntu1~22.04.1"}},
	{in: "1.0-~", want: Version{0, "1.0", "~"}},
	{in: "", errMsg: "version string is empty"},
	{in: "  ", errMsg: "version string is empty"},
	{in: "1.0 x", errMsg: "version string has embedded spaces"},
	{in: ":1", errMsg: "epoch in version is empty"},
	{in: "a:1", errMsg: "epoch in version is empty"},
	{in: "1a:1", errMsg: "epoch in version is not number"},
	{in: "1.0-1:2", errMsg: "epoch in version is not number"},
	{in: "-1:1.0", errMsg: "epoch in version is negative"},
	{in: "2147483648:1", errMsg: "epoch in version is too big"},
	{in: "99999999999999999999:1", errMsg: "epoch in version is too big"},
	{in: "1:", errMsg: "nothing after colon in version number"},
	{in: "1.0-", errMsg: "revision number is empty"},
	{in: "-1", errMsg: "version number is empty"},
	{in: "1:-1", errMsg: "version number is empty"},
	{in: "a1.0", errMsg: "version number does not start with digit", warning: true},
	{in: "1:a", errMsg: "version number does not start with digit", warning: true},
	{in: "1.0_1", errMsg: "invalid character in version number", warning: true},
	{in: "1.0\n2", errMsg: "invalid character in version number", warning: true},
	{in: "1.0-a_b", errMsg: "invalid character in revision number", warning: true},
	{in: "1.0-a=b", errMsg: "invalid character in revision number", warning: true},
	{in: "1.0-a:b", errMsg: "epoch in version is not number"},
	{in: "1.0\x00", errMsg: "version string contains a NUL byte"},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		got, err := Parse(tt.in)
		if tt.errMsg == "" {
			if err != nil || got != tt.want {
				t.Errorf("Parse(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			}
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) || se.Msg != tt.errMsg || se.Warning != tt.warning {
			t.Errorf("Parse(%q) error = %v; want %q (warning %v)", tt.in, err, tt.errMsg, tt.warning)
		}
		_, lerr := ParseLenient(tt.in)
		if (lerr == nil) != tt.warning {
			t.Errorf("ParseLenient(%q) error = %v; want accepted = %v", tt.in, lerr, tt.warning)
		}
	}
}

func TestCompare(t *testing.T) {
	// Each line is strictly ascending; "=" groups equal spellings.
	chains := [][]string{
		{"1.0~~", "1.0~~a", "1.0~", "1.0~rc1", "1.0", "1.0A", "1.0Z", "1.0a", "1.0z", "1.0+", "1.0.", "1.0.1", "1.1", "1.10", "2"},
		{"1.0-0ubuntu1~22.04", "1.0-0ubuntu1", "1.0-1", "1.0-1build1", "1.0-2", "1.0-10"},
		{"9.9", "1:0.1", "1:0.1-1", "2:0"},
		{"1~", "1", "1-0.1", "1-1"},
		{"A", "Z", "a", "z", "+"},
		// dpkg weighs bytes >= 0x80 as signed chars: after letters, before other characters.
		{"1.0~", "1.0", "1.0a", "1.0z", "1.0\xc3\xa9", "1.0\xff", "1.0+", "1.0."},
	}
	for _, chain := range chains {
		for i := range chain {
			for j := range chain {
				a, b := mustLenient(t, chain[i]), mustLenient(t, chain[j])
				want := sign(i - j)
				if got := Compare(a, b); got != want {
					t.Errorf("Compare(%q, %q) = %d; want %d", chain[i], chain[j], got, want)
				}
			}
		}
	}
	equal := [][2]string{{"1.0", "1.00"}, {"1.0-0", "1.0"}, {"0:1.0", "1.0"}, {"01.002", "1.2"}, {"1.0-00", "1.0"}, {"00:1", "1"}}
	for _, e := range equal {
		if got, err := CompareStrings(e[0], e[1]); err != nil || got != 0 {
			t.Errorf("CompareStrings(%q, %q) = %d, %v; want 0", e[0], e[1], got, err)
		}
	}
	if _, err := CompareStrings("1.0-", "1.0"); err == nil {
		t.Errorf("CompareStrings accepted an invalid version")
	}
}

func TestSatisfies(t *testing.T) {
	v, ref := MustParse("1.2"), MustParse("1.3")
	tests := []struct {
		op         string
		lt, eq, gt bool // result when v <, =, > ref
	}{
		{"<<", true, false, false}, {"lt", true, false, false},
		{"<=", true, true, false}, {"<", true, true, false}, {"le", true, true, false},
		{"=", false, true, false}, {"eq", false, true, false},
		{"ne", true, false, true},
		{">=", false, true, true}, {">", false, true, true}, {"ge", false, true, true},
		{">>", false, false, true}, {"gt", false, false, true},
		{"~=", false, false, false},
	}
	for _, tt := range tests {
		if got := Satisfies(v, tt.op, ref); got != tt.lt {
			t.Errorf("Satisfies(1.2 %s 1.3) = %v", tt.op, got)
		}
		if got := Satisfies(v, tt.op, v); got != tt.eq {
			t.Errorf("Satisfies(1.2 %s 1.2) = %v", tt.op, got)
		}
		if got := Satisfies(ref, tt.op, v); got != tt.gt {
			t.Errorf("Satisfies(1.3 %s 1.2) = %v", tt.op, got)
		}
	}
}

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"1.0": "1.0", "0:1.0": "1.0", "3:1.0-1": "3:1.0-1", " 1.0-0 ": "1.0-0", "01:2": "1:2", "0:1:2": "0:1:2", "1:2:3": "1:2:3",
	} {
		if got := MustParse(in).String(); got != want {
			t.Errorf("MustParse(%q).String() = %q; want %q", in, got, want)
		}
	}
}

func mustLenient(t *testing.T, s string) Version {
	t.Helper()
	v, err := ParseLenient(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
