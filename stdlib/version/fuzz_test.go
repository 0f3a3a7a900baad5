package version

import "testing"

var fuzzSeeds = []string{
	"1.0", "1.00", "1.0-0", "0:1.0", "2:1.4.2-3", "1.0~rc1", "1.0~~", "1.0+dfsg-0ubuntu1~22.04.1",
	"1:2:3", "0:1:2", "1.0-1-2", "2024.01.05+git", "1.9.x", "1.0-~", "a1", "1.0_1", "1.0\xff",
	" 1.0\t", "+1:1", "-0:1", "\n1:0", "2147483647:1", "99999999999999999999", "1.0-", ":1", "",
}

// FuzzParse: Parse never panics, and String∘Parse round-trips.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseLenient(s)
		if err != nil {
			if _, err2 := Parse(s); err2 == nil {
				t.Fatalf("Parse accepts %q, ParseLenient rejects it: %v", s, err)
			}
			return
		}
		strictErr := func() error { _, err := Parse(s); return err }()
		back, err := ParseLenient(v.String())
		if err != nil || back != v {
			t.Fatalf("ParseLenient(%q) = %#v; its String %q parses to %#v, %v", s, v, v.String(), back, err)
		}
		if _, err := Parse(v.String()); (err == nil) != (strictErr == nil) {
			t.Fatalf("Parse(%q) error %v, Parse of its String %q error %v", s, strictErr, v.String(), err)
		}
		if Compare(v, back) != 0 {
			t.Fatalf("Compare(%q, its String) != 0", s)
		}
	})
}

// FuzzCompare: Compare is reflexive, antisymmetric and transitive.
func FuzzCompare(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(s, fuzzSeeds[(i+1)%len(fuzzSeeds)], fuzzSeeds[(i+7)%len(fuzzSeeds)])
	}
	f.Fuzz(func(t *testing.T, as, bs, cs string) {
		a, errA := ParseLenient(as)
		b, errB := ParseLenient(bs)
		c, errC := ParseLenient(cs)
		if errA != nil || errB != nil || errC != nil {
			return
		}
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, itself) != 0", as)
		}
		ab, ba := Compare(a, b), Compare(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("Compare(%q, %q) = %d, reversed %d", as, bs, ab, ba)
		}
		bc, ac := Compare(b, c), Compare(a, c)
		if ab <= 0 && bc <= 0 && ac > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but Compare(a, c) = %d", as, bs, cs, ac)
		}
		if ab == 0 && ac != bc {
			t.Fatalf("%q = %q but they compare differently with %q: %d, %d", as, bs, cs, ac, bc)
		}
	})
}

// FuzzBump: Bump either fails or returns a valid version that sorts after its input.
func FuzzBump(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, s string, p uint8) {
		v, err := ParseLenient(s)
		if err != nil {
			return
		}
		part := Parts()[int(p)%len(Parts())]
		next, err := Bump(v, part)
		if err != nil {
			return
		}
		if Compare(next, v) <= 0 {
			t.Fatalf("Bump(%q, %s) = %q does not sort after it", s, part, next)
		}
		back, err := ParseLenient(next.String())
		if err != nil || back != next {
			t.Fatalf("Bump(%q, %s) = %#v, which does not round-trip: %#v, %v", s, part, next, back, err)
		}
		if _, err := Parse(s); err == nil {
			if _, err := Parse(next.String()); err != nil {
				t.Fatalf("Bump(%q, %s) = %q is not valid: %v", s, part, next, err)
			}
		}
	})
}
