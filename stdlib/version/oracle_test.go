package version

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The oracle tests check this package against the real dpkg. Each runs one generated shell
// script per CPU, in which every line execs dpkg once: ~1.2 ms a comparison.

func needDpkg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatal("dpkg is not installed (it is part of every Debian system): ", err)
	}
}

// shQuote quotes s as one word for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runShards splits the script lines over one sh per CPU and returns their output lines.
func runShards(t *testing.T, prelude string, lines []string) []string {
	t.Helper()
	shards := max(1, runtime.NumCPU())
	outs := make([][]string, shards)
	errs := make([]error, shards)
	var wg sync.WaitGroup
	for s := range shards {
		var script strings.Builder
		script.WriteString(prelude)
		for i := s; i < len(lines); i += shards {
			script.WriteString(lines[i])
			script.WriteByte('\n')
		}
		path := filepath.Join(t.TempDir(), fmt.Sprintf("shard%d.sh", s))
		if err := os.WriteFile(path, []byte(script.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			out, err := exec.Command("sh", path).Output()
			if err != nil {
				errs[s] = fmt.Errorf("sh %s: %w", path, err)
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				outs[s] = append(outs[s], sc.Text())
			}
		})
	}
	wg.Wait()
	var all []string
	for s := range shards {
		if errs[s] != nil {
			t.Fatal(errs[s])
		}
		all = append(all, outs[s]...)
	}
	return all
}

var (
	digitRuns    = []string{"0", "00", "1", "01", "001", "2", "9", "10", "010", "11", "99", "100", "2024", "123456789012345678901234567890"}
	upstreamSeps = []string{".", ".", ".", "+", "~", "~~", "a", "b", "z", "A", "Z", "rc", ".rc", "+git", "~rc", "+dfsg", ".a", "~a", "a~", "+~", "~+", ".."}
	revisionRuns = []string{"0", "1", "01", "2", "10", "ubuntu", "build", "~bpo", "+deb12u", ".", "~", "a", "+", "Z"}
	epochs       = []string{"0:", "1:", "2:", "00:", "01:", "10:", "2147483647:"}
	// Characters dpkg only warns about; bytes >= 0x80 check the signed-char ordering.
	oddChars = []string{"_", "@", "=", "\xc3\xa9", "\xff", "/", "!"}
)

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

// genVersion returns a random version, valid for ParseLenient.
func genVersion(r *rand.Rand) string {
	var b strings.Builder
	hasEpoch := r.IntN(4) == 0
	if hasEpoch {
		b.WriteString(pick(r, epochs))
	}
	hasRevision := r.IntN(2) == 0
	b.WriteString(pick(r, digitRuns))
	for n := r.IntN(6); n > 0; n-- {
		switch x := r.IntN(20); {
		case x == 0 && hasEpoch:
			b.WriteString(":")
		case x == 1 && hasRevision:
			b.WriteString("-")
		default:
			b.WriteString(pick(r, upstreamSeps))
		}
		if r.IntN(3) > 0 {
			b.WriteString(pick(r, digitRuns))
		}
	}
	if hasRevision {
		b.WriteString("-")
		for n := 1 + r.IntN(4); n > 0; n-- {
			b.WriteString(pick(r, revisionRuns))
		}
	}
	s := b.String()
	if r.IntN(25) == 0 { // a version dpkg only warns about
		i := r.IntN(len(s) + 1)
		s = s[:i] + pick(r, oddChars) + s[i:]
	}
	return s
}

// mutate returns a version close to s, so that comparisons go deep; rarely s itself.
func mutate(r *rand.Rand, s string) string {
	switch r.IntN(11) {
	case 0:
		return s
	case 1: // equal but written differently
		for _, rw := range [][2]string{{".0", ".00"}, {"1", "01"}, {".00", ".0"}, {"01", "1"}} {
			if strings.Contains(s, rw[0]) {
				return strings.Replace(s, rw[0], rw[1], 1)
			}
		}
	case 2:
		if strings.HasSuffix(s, "-0") {
			return strings.TrimSuffix(s, "-0")
		}
		if !strings.Contains(s, "-") {
			return s + "-0"
		}
	case 3:
		if strings.HasPrefix(s, "0:") {
			return s[2:]
		}
		if !strings.Contains(s, ":") {
			return "0:" + s
		}
	case 4: // truncate
		if t := s[:1+r.IntN(len(s))]; t != s {
			return t
		}
	case 5: // insert a tilde
		i := 1 + r.IntN(len(s))
		return s[:i] + "~" + s[i:]
	case 6: // replace one character
		if i := 1 + r.IntN(len(s)); i < len(s) {
			return s[:i] + string("0123456789.+~aZ"[r.IntN(15)]) + s[i+1:]
		}
	case 7:
		return genVersion(r)
	case 8: // a character dpkg only warns about
		if i := 1 + r.IntN(len(s)); i < len(s) {
			return s[:i] + pick(r, oddChars) + s[i+1:]
		}
	}
	return s + pick(r, []string{"~", "~1", "a", "+", ".", ".0", "0", "1", "-1", "Z"})
}

func relation(c int) string { return [...]string{"lt", "eq", "gt"}[c+1] }

// TestCompareOracle compares thousands of seeded random pairs with dpkg --compare-versions.
func TestCompareOracle(t *testing.T) {
	needDpkg(t)
	n := 4000
	if testing.Short() {
		n = 400
	}
	r := rand.New(rand.NewPCG(1, 2))
	type pair struct{ a, b, rel string }
	var pairs []pair
	var lines []string
	for len(pairs) < n {
		a := genVersion(r)
		b := mutate(r, a)
		if r.IntN(2) == 0 {
			a, b = b, a
		}
		c, err := CompareStrings(a, b)
		if err != nil {
			continue // a mutation produced an invalid version; TestParseOracle covers those
		}
		p := pair{a, b, relation(c)}
		// Each line checks the relation Compare claims; exactly one of lt, eq, gt holds.
		lines = append(lines, fmt.Sprintf("c %s %s %s %d", shQuote(a), p.rel, shQuote(b), len(pairs)))
		pairs = append(pairs, p)
	}
	const prelude = `c() { dpkg --compare-versions -- "$1" "$2" "$3" 2>/dev/null || echo "$4"; }` + "\n"
	failed := runShards(t, prelude, lines)
	for i, f := range failed {
		if i == 20 {
			t.Fatalf("... and %d more disagreements", len(failed)-i)
		}
		k, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("unexpected script output %q", f)
		}
		p := pairs[k]
		dpkgSays := "gt"
		for _, rel := range []string{"lt", "eq"} {
			if exec.Command("dpkg", "--compare-versions", "--", p.a, rel, p.b).Run() == nil {
				dpkgSays = rel
			}
		}
		t.Errorf("Compare(%q, %q): %s, dpkg says %s", p.a, p.b, p.rel, dpkgSays)
	}
	counts := map[string]int{}
	for _, p := range pairs {
		counts[p.rel]++
	}
	if counts["lt"] < n/10 || counts["eq"] < n/20 || counts["gt"] < n/10 {
		t.Errorf("generator is unbalanced: %v", counts)
	}
	t.Logf("%d pairs agree with dpkg (%v)", len(pairs), counts)
}

// genSyntax returns a random string that may or may not be a valid version.
func genSyntax(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		s := genVersion(r)
		i := r.IntN(len(s) + 1)
		return s[:i] + pick(r, []string{"", " ", "\t", ":", "-", "+", "~", "a", "_", "\n", "-0:", " x"}) + s[i:]
	}
	const alphabet = " \t\n\v\r:-+~.0123456789aZ_é"
	var b strings.Builder
	for n := r.IntN(9); n > 0; n-- {
		i := r.IntN(len(alphabet))
		b.WriteByte(alphabet[i])
	}
	return b.String()
}

// syntaxClass is dpkg --validate-version's exit status for s: 0 valid, 1 warning, 2 error.
func syntaxClass(s string) int {
	if _, err := Parse(s); err == nil {
		return 0
	}
	if _, err := ParseLenient(s); err == nil {
		return 1
	}
	return 2
}

// TestParseOracle checks that Parse accepts and rejects what dpkg --validate-version does,
// with the same distinction between errors and warnings, on random strings; and that the
// messages of parseTests are dpkg's.
func TestParseOracle(t *testing.T) {
	needDpkg(t)
	if exec.Command("dpkg", "--validate-version", "1.0").Run() != nil {
		t.Fatal("this dpkg has no --validate-version (dpkg >= 1.18.16 has)")
	}
	n := 1000
	if testing.Short() {
		n = 150
	}
	r := rand.New(rand.NewPCG(3, 4))
	var inputs []string
	var lines []string
	for len(inputs) < n {
		s := genSyntax(r)
		lines = append(lines, fmt.Sprintf("v %s %d", shQuote(s), len(inputs)))
		inputs = append(inputs, s)
	}
	const prelude = `v() { dpkg --validate-version -- "$1" 2>/dev/null; echo "$2 $?"; }` + "\n"
	got := make([]int, len(inputs))
	for _, line := range runShards(t, prelude, lines) {
		var i, rc int
		if _, err := fmt.Sscanf(line, "%d %d", &i, &rc); err != nil || i < 0 || i >= len(inputs) {
			t.Fatalf("unexpected script output %q", line)
		}
		got[i] = rc + 1 // 0 means no result
	}
	for i, g := range got {
		if g == 0 {
			t.Fatalf("no result for %q", inputs[i])
		}
		got[i] = g - 1
	}
	classes := [3]int{}
	for i, s := range inputs {
		want := got[i]
		classes[min(want, 2)]++
		if c := syntaxClass(s); c != want {
			_, err := ParseLenient(s)
			t.Errorf("%q: dpkg --validate-version exits %d, we say %d (%v)", s, want, c, err)
		}
	}
	if classes[0] < n/10 || classes[1] < n/50 || classes[2] < n/10 {
		t.Errorf("generator is unbalanced: valid/warning/error = %v", classes)
	}
	t.Logf("%d strings classified as dpkg does (valid/warning/error = %v)", n, classes)

	for _, tt := range parseTests {
		if strings.IndexByte(tt.in, 0) >= 0 {
			continue // cannot be passed to a command
		}
		var stderr bytes.Buffer
		cmd := exec.Command("dpkg", "--validate-version", "--", tt.in)
		cmd.Stderr = &stderr
		err := cmd.Run()
		if tt.errMsg == "" {
			if err != nil {
				t.Errorf("dpkg rejects %q: %s", tt.in, stderr.String())
			}
			continue
		}
		if !strings.Contains(stderr.String(), "bad syntax: "+tt.errMsg) {
			t.Errorf("%q: dpkg says %q, we say %q", tt.in, stderr.String(), tt.errMsg)
		}
		if isWarn := strings.Contains(stderr.String(), "warning:"); isWarn != tt.warning {
			t.Errorf("%q: dpkg warning = %v, we say %v", tt.in, isWarn, tt.warning)
		}
	}
}
