package control

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const sample = `# a comment
Package: hello
Version: 1.0-1
Architecture: amd64
Depends: python3.11,
 nginx (>= 1.22)
Description: says hello
 A longer description.
 .
   verbatim line
 .
 Last paragraph.

Package: second
Conffiles:
 /etc/a 0123
 /etc/b 4567
`

func TestParse(t *testing.T) {
	ps, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("got %d paragraphs", len(ps))
	}
	p := ps[0]
	if got := p.Get("package"); got != "hello" {
		t.Errorf("Get(package) = %q", got)
	}
	if got := p.Get("Depends"); got != "python3.11,\nnginx (>= 1.22)" {
		t.Errorf("Depends = %q", got)
	}
	want := "says hello\nA longer description.\n\n  verbatim line\n\nLast paragraph."
	if got := p.Get("DESCRIPTION"); got != want {
		t.Errorf("Description = %q, want %q", got, want)
	}
	if got := ps[1].Get("Conffiles"); got != "\n/etc/a 0123\n/etc/b 4567" {
		t.Errorf("Conffiles = %q", got)
	}
	var b bytes.Buffer
	if err := Write(&b, ps); err != nil {
		t.Fatal(err)
	}
	want2 := strings.TrimPrefix(sample, "# a comment\n")
	if b.String() != want2 {
		t.Errorf("Write:\n%s\nwant:\n%s", b.String(), want2)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{" cont\n", "line 1: continuation line outside a field"},
		{"A: b\nno colon here\n", "line 2: expected"},
		{"A: b\na: c\n", "line 2: duplicate field"},
		{"A: b\n\n-----BEGIN PGP SIGNATURE-----\n", "line 3: PGP-signed"},
		{"A B: c\n", "line 1: field name \"A B\" has invalid character"},
		{": c\n", "line 1: empty field name"},
	} {
		_, err := Parse(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
	if _, err := ParseOne(strings.NewReader("A: b\n\nC: d\n")); err == nil {
		t.Error("ParseOne accepted two paragraphs")
	}
	if _, err := ParseOne(strings.NewReader("# only\n\n")); err == nil {
		t.Error("ParseOne accepted no paragraph")
	}
}

func TestParagraphEdit(t *testing.T) {
	var p Paragraph
	p.Set("Package", "a")
	p.Set("Version", "1")
	p.Set("package", "b")
	p.Set("Empty", "  ")
	if p.Get("PACKAGE") != "b" || len(p.Fields) != 3 || p.Fields[0].Name != "Package" {
		t.Fatalf("Set: %+v", p)
	}
	if !p.Has("version") || p.Has("nope") {
		t.Error("Has")
	}
	q := p.Clone()
	p.Delete("VERSION")
	if p.Has("Version") || !q.Has("Version") {
		t.Error("Delete / Clone")
	}
	b, err := q.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "Package: b\nVersion: 1\n" {
		t.Errorf("empty field written: %q", b)
	}
	bad := Paragraph{Fields: []Field{{"Description", "x\n.\ny"}}}
	if _, err := bad.Bytes(); err == nil {
		t.Error("value line \".\" accepted")
	}
	dup := Paragraph{Fields: []Field{{"A", "1"}, {"a", "2"}}}
	if _, err := dup.Bytes(); err == nil {
		t.Error("duplicate field accepted")
	}
}

// normalize drops what Write leaves out (empty fields, then empty paragraphs).
func normalize(ps []Paragraph) []Paragraph {
	var out []Paragraph
	for _, p := range ps {
		var q Paragraph
		for _, f := range p.Fields {
			if strings.TrimSpace(f.Value) != "" {
				q.Fields = append(q.Fields, f)
			}
		}
		if len(q.Fields) > 0 {
			out = append(out, q)
		}
	}
	return out
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("A: b\n\n\n# c\nD:\n .\n x\n")
	f.Add("A:  b  \r\n c\t\n\t.\n")
	f.Add("Description: x\n ..\n .\n")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := Write(&b, ps); err != nil {
			t.Fatalf("Write of parsed input: %v", err)
		}
		ps2, err := Parse(&b)
		if err != nil {
			t.Fatalf("reparse: %v\n%q", err, b.String())
		}
		if want := normalize(ps); !reflect.DeepEqual(normalize(ps2), want) || len(ps2) != len(want) {
			t.Fatalf("round trip:\n%#v\n%#v", want, ps2)
		}
	})
}

func TestParagraphJSON(t *testing.T) {
	p := Paragraph{Fields: []Field{{"Package", "hello"}, {"Version", "1.0"}, {"Description", "x\ny \"q\""}}}
	b, err := json.Marshal(struct{ C Paragraph }{p})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"C":{"Package":"hello","Version":"1.0","Description":"x\ny \"q\""}}` {
		t.Errorf("json: %s", b)
	}
	var back struct{ C Paragraph }
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.C, p) {
		t.Errorf("round trip: %v %+v", err, back.C)
	}
}
