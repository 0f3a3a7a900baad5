package deb

// Unpacking the arguments of deb(), tree(), file(), directory() and link(): starlark.Unpacker
// types that turn Starlark values into the Go values of a Spec.

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
)

// unpackArgs is starlark.UnpackArgs reporting a bad argument as "PREFIX: PARAM: why", as
// these builtins report every mistake, where UnpackArgs says "FN: for parameter PARAM: why";
// an element of a list is PARAM[I]. prefix (nil: FN) is called after unpacking, so deb() can
// name the package.
func unpackArgs(fn string, args starlark.Tuple, kwargs []starlark.Tuple, prefix func() string, pairs ...any) error {
	var bad *argError
	wrapped := slices.Clone(pairs)
	for i := 1; i < len(pairs); i += 2 {
		wrapped[i] = &argUnpacker{param: strings.TrimRight(pairs[i-1].(string), "?"), ptr: pairs[i], bad: &bad}
	}
	err := starlark.UnpackArgs(fn, args, kwargs, wrapped...)
	if bad == nil {
		return err
	}
	if prefix != nil {
		fn = prefix()
	}
	return fmt.Errorf("%s: %w", fn, bad)
}

// argUnpacker unpacks one argument into ptr and remembers what was wrong with it.
type argUnpacker struct {
	param string
	ptr   any
	bad   **argError
}

func (a *argUnpacker) Unpack(v starlark.Value) error {
	err := starlark.UnpackArg(v, a.ptr)
	if err != nil {
		*a.bad = &argError{param: a.param, err: err}
	}
	return err
}

// argError is a bad argument: "PARAM: why" or "PARAM[I]: why".
type argError struct {
	param string
	err   error
}

func (e *argError) Error() string {
	name, err := e.param, e.err
	for {
		ie, ok := err.(*itemError)
		if !ok {
			return name + ": " + err.Error()
		}
		name, err = fmt.Sprintf("%s[%d]", name, ie.i), ie.err
	}
}

func (e *argError) Unwrap() error { return e.err }

// itemError is a bad element of a list argument.
type itemError struct {
	i   int
	err error
}

func (e *itemError) Error() string { return fmt.Sprintf("[%d]: %v", e.i, e.err) }

// unpackList unpacks a list argument element by element.
func unpackList[T any](v starlark.Value, elem func(starlark.Value) (T, error)) ([]T, error) {
	l, ok := v.(*starlark.List)
	if !ok {
		return nil, fmt.Errorf("got %s, want list", v.Type())
	}
	out := make([]T, 0, l.Len())
	for i := range l.Len() {
		x, err := elem(l.Index(i))
		if err != nil {
			return nil, &itemError{i, err}
		}
		out = append(out, x)
	}
	return out, nil
}

// stringList is a list of strings.
type stringList []string

func (l *stringList) Unpack(v starlark.Value) (err error) {
	*l, err = unpackList(v, func(e starlark.Value) (string, error) {
		s, ok := starlark.AsString(e)
		if !ok {
			return "", fmt.Errorf("want a string, got %s", e.Type())
		}
		return s, nil
	})
	return err
}

// ownerArg is an owner or group: "NAME" or "NAME:ID" (see ParseOwner).
type ownerArg struct{ o *Owner }

func (a *ownerArg) Unpack(v starlark.Value) error {
	s, ok := starlark.AsString(v)
	if !ok {
		return fmt.Errorf("want a string, got %s", v.Type())
	}
	var err error
	a.o, err = parseOwner(s) // deb() checks a NAME without a static id
	return err
}

// modeArg is a file mode: an int such as 0o640.
type modeArg struct{ m *fs.FileMode }

func (a *modeArg) Unpack(v starlark.Value) error {
	i, ok := v.(starlark.Int)
	if !ok {
		return fmt.Errorf("want an int such as 0o644, got %s", v.Type())
	}
	n, ok := i.Int64()
	if !ok {
		return fmt.Errorf("%v is not a file mode (0 to 0o7777)", v)
	}
	m, err := ParseMode(n)
	a.m = &m
	return err
}

// archArg is an architecture name.
type archArg struct{ arch *string }

func (a archArg) Unpack(v starlark.Value) error {
	s, ok := starlark.AsString(v)
	if !ok {
		return errors.New("want a string")
	}
	*a.arch = s
	return control.ValidArchitecture(s)
}

// versionArg is a version string, version() (the project version when the package is built),
// or "content" (the project version at which the content last changed: upds.lock).
type versionArg struct{ s *Spec }

func (a versionArg) Unpack(v starlark.Value) error {
	switch v := v.(type) {
	case starlark.String:
		if v == "content" {
			a.s.ContentVersion = true // the version comes from VersionOf and upds.lock
			return nil
		}
		a.s.Version, a.s.VersionOf = string(v), nil
	case version.Lazy:
		a.s.VersionOf = v.Resolve
	default:
		return fmt.Errorf("want a string or version(), got %s", v.Type())
	}
	return nil
}

// scriptArg is a maintainer script: its text (a string that starts with #! or has more than
// one line) or a project file.
type scriptArg Script

func (a *scriptArg) Unpack(v starlark.Value) error {
	return unpackScript((*Script)(a), v, func(s string) bool { return strings.Contains(s, "\n") || strings.HasPrefix(s, "#!") })
}

// triggersArg is the triggers file: its text (a string with a space or more than one line) or
// a project file.
type triggersArg Script

func (a *triggersArg) Unpack(v starlark.Value) error {
	return unpackScript((*Script)(a), v, func(s string) bool { return strings.Contains(s, "\n") || strings.Contains(s, " ") })
}

// textArg is a control file given as its text (more than one line) or a project file: the
// debconf templates, the symbols file.
type textArg Script

func (a *textArg) Unpack(v starlark.Value) error {
	return unpackScript((*Script)(a), v, func(s string) bool { return strings.Contains(s, "\n") })
}

func unpackScript(sc *Script, v starlark.Value, isText func(string) bool) error {
	s, ok := starlark.AsString(v)
	if !ok {
		return fmt.Errorf("want a file path or the script text, got %s", v.Type())
	}
	if isText(s) {
		*sc = Script{Text: s}
		return nil
	}
	p, err := interp.ProjectPath(s)
	*sc = Script{Path: p}
	return err
}

// fieldMap is a dict of control fields.
type fieldMap map[string]string

func (m *fieldMap) Unpack(v starlark.Value) error {
	d, ok := v.(*starlark.Dict)
	if !ok {
		return fmt.Errorf("got %s, want dict", v.Type())
	}
	*m = make(fieldMap, d.Len())
	for _, it := range d.Items() {
		k, ok1 := starlark.AsString(it[0])
		v, ok2 := starlark.AsString(it[1])
		if !ok1 || !ok2 {
			return errors.New("want string keys and values")
		}
		(*m)[k] = v
	}
	return nil
}

// relationList is a relation field: strings ("nginx (>= 1.22)") and deb targets.
type relationList []Relation

func (l *relationList) Unpack(v starlark.Value) (err error) {
	*l, err = unpackList(v, func(e starlark.Value) (Relation, error) {
		switch e := e.(type) {
		case starlark.String:
			return Relation{Text: string(e)}, nil
		case *Target:
			return Relation{Package: e}, nil
		}
		return Relation{}, fmt.Errorf("want a string or a deb target, got %s", e.Type())
	})
	return err
}

// contentList is deb()'s contents: tree(), file(), directory(), link() and venv() targets,
// and where BUILD.star gives each (the zero Position for a venv()).
type contentList struct {
	cs  *[]Content
	pos *[]syntax.Position
}

type positioned struct {
	c   Content
	pos syntax.Position
}

func (l contentList) Unpack(v starlark.Value) (err error) {
	nested, err := unpackList(v, func(e starlark.Value) ([]positioned, error) {
		if inner, ok := e.(*starlark.List); ok {
			// What a rule returns: service(...) is a list of a file() and a snippet().
			return unpackList(inner, contentOf)
		}
		c, err := contentOf(e)
		return []positioned{c}, err
	})
	for _, c := range slices.Concat(nested...) {
		*l.cs, *l.pos = append(*l.cs, c.c), append(*l.pos, c.pos)
	}
	return err
}

func contentOf(e starlark.Value) (positioned, error) {
	switch e := e.(type) {
	case *content:
		return positioned{e.Content, e.pos}, nil
	case ContentsTarget:
		return positioned{c: Content{Kind: ContentBuilt, Built: e}}, nil
	case *Target:
		return positioned{}, errors.New("a package cannot contain a package (list it in depends)")
	}
	return positioned{}, fmt.Errorf("want tree(), file(), directory(), link(), snippet(), venv() or a list of them, got %s", e.Type())
}
