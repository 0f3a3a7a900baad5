package repo

import "errors"

// Errors callers tell apart with errors.Is. The errors returned carry their own text (which
// directory, which file, why); these say what kind of failure it was.
var (
	// ErrNotRepository: the directory holds no repository (no repo.conf; upds repo init makes one).
	ErrNotRepository = errors.New("not a repository")
	// ErrExists: Init found a repository (or part of one) where it was to make a new one.
	ErrExists = errors.New("repository exists")
	// ErrVerify: a signature did not verify (InRelease, Release.gpg), or there was no key
	// to verify it with. The index it signs must not be trusted.
	ErrVerify = errors.New("signature does not verify")
	// ErrExpired: the signed Release is past its Valid-Until; the repository must be
	// published again.
	ErrExpired = errors.New("release expired")
)

// kindError is err, with err's text, that also errors.Is its kind (one of the Err values).
type kindError struct {
	kind, err error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// withKind marks err as a failure of the given kind without changing its text.
func withKind(kind, err error) error { return &kindError{kind: kind, err: err} }
