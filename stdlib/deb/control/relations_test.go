package control

import (
	"strings"
	"testing"
)

func TestParseRelations(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"aa", "aa"},
		{"  aa|bb(>=1.0),cc:any [amd64],dd <!nocheck>", "aa | bb (>= 1.0), cc:any [amd64], dd <!nocheck>"},
		{"python3.11 (>= 3.11), libc6 (>> 2:2.36-9~deb12u1)", "python3.11 (>= 3.11), libc6 (>> 2:2.36-9~deb12u1)"},
		{"xx (= 1.0) [!i386 !armel] <stage1 cross> <!nocheck>", "xx (= 1.0) [!i386 !armel] <stage1 cross> <!nocheck>"},
		{"aa\n bb (<< 2)", "aa, bb (<< 2)"},
	} {
		in := strings.ReplaceAll(tc.in, "\n ", ", ")
		rs, err := ParseRelations(in)
		if err != nil {
			t.Errorf("ParseRelations(%q): %v", in, err)
			continue
		}
		if got := rs.String(); got != tc.want {
			t.Errorf("ParseRelations(%q).String() = %q, want %q", in, got, tc.want)
		}
	}
	rs, _ := ParseRelations("aa | bb:any (<= 2)")
	if r := rs[0][1]; r.Name != "bb" || r.ArchQualifier != "any" || r.Op != "<=" || r.Version != "2" {
		t.Errorf("fields: %+v", r)
	}
}

func TestParseRelationsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"aa,,bb", "empty entry"},
		{"aA", "invalid character"},
		{"a", "at least 2"},
		{"aa (> 1)", "obsolete operator"},
		{"aa (>= )", "version string is empty"},
		{"aa (>= x1)", "does not start with digit"},
		{"aa (1.0)", "missing operator"},
		{"aa (>= 1.0", "missing \")\""},
		{"aa [amd64 !i386]", "mixes negated"},
		{"aa bb", "unexpected"},
		{"${shlibs:Depends}", "substitution variable"},
		{"aa | ", "missing package name"},
		{"aa (=> 1)", "unknown operator"},
	} {
		_, err := ParseRelations(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRelations(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
	rs, err := ParseRelations("aa [amd64], bb <!nocheck>")
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.CheckBinary(); err == nil || !strings.Contains(err.Error(), "source packages") {
		t.Errorf("CheckBinary = %v", err)
	}
	rs, _ = ParseRelations("aa (>= 1), bb:any")
	if err := rs.CheckBinary(); err != nil {
		t.Errorf("CheckBinary = %v", err)
	}
}

func TestValidPackageName(t *testing.T) {
	for _, ok := range []string{"ab", "hello-virtualenv", "g++", "python3.11", "0ad"} {
		if err := ValidPackageName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a", "Hello", "-ab", ".ab", "a_b", "a b", "ä1"} {
		if ValidPackageName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestValidVersion(t *testing.T) {
	for _, ok := range []string{"1", "1.0-1", "2:1.4.2", "1:2.36-9+deb12u1", "1.0~rc1", "1.0-1-2", "3:1:2-3"} {
		if err := ValidVersion(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a1", "1.0-", ":1", "x:1", "1_0", "1.0 -1", "1.0-a_b", "-1"} {
		if ValidVersion(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseRelations(f *testing.F) {
	for _, s := range []string{"aa | bb (>= 1.0), cc:any [amd64], dd <!nocheck>", "xx (= 1:2-3) [!i386] <a b>", "aa,", "(", "[", "<"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := ParseRelations(in)
		if err != nil {
			return
		}
		s := rs.String()
		rs2, err := ParseRelations(s)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", s, in, err)
		}
		if s2 := rs2.String(); s2 != s {
			t.Fatalf("canonical form not stable: %q -> %q", s, s2)
		}
	})
}
