// Package storage keeps objects that outlive a run — an apt repository's published tree,
// the shared action cache — in a directory on this machine or under a prefix of an S3
// bucket, behind one small interface (Store), so that the code above it is the same for
// both: a publish to S3 is the on-disk publish over another Store.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// ErrNotExist is returned (wrapped) for a name that holds no object.
var ErrNotExist = fs.ErrNotExist

// ErrPrecondition is returned (wrapped) when a conditional write finds the object not as
// expected: it exists (IfAbsent), or it changed (IfMatch).
var ErrPrecondition = errors.New("precondition failed")

// Object is one object to write.
type Object struct {
	Name string // slash-separated, relative to the store
	Data []byte // the content, unless File is set
	// File is a local file holding the content. With Move set it is moved into the store
	// (a Dir renames it; an S3 store uploads it and removes it after the upload).
	File string
	Move bool
	// LinkFrom names an object of the store, written by an earlier Put, whose content is
	// Data's: a Dir hard-links it instead of writing Data again (the by-hash copy of a
	// Packages file of 9 MB, say); other stores write Data.
	LinkFrom string
	// CacheControl is the Cache-Control an HTTP server sends with the object (S3 stores
	// keep it; a Dir has no use for it): "no-cache" for names whose content changes,
	// ImmutableCache for content-addressed ones.
	CacheControl string
	// IfAbsent writes the object only if the name holds none; IfMatch only if the name
	// holds the object of that Stamp. Otherwise ErrPrecondition.
	IfAbsent bool
	IfMatch  string
	// Stamp is set by Put: the written object's Info.Stamp (when Put is called with the
	// caller's slice, objs...).
	Stamp string
}

// ImmutableCache is the Cache-Control of objects whose name is their content (pool files,
// by-hash files): clients and CDNs may keep them for a year.
const ImmutableCache = "public, max-age=31536000, immutable"

// Info describes a stored object.
type Info struct {
	Name string // relative to the store
	Size int64
	// Stamp changes whenever the object is replaced: the modification time and inode in a
	// Dir, the ETag on S3. It keys caches of what was read from the object, and IfMatch.
	Stamp string
}

// Store is a place for objects. Names are slash-separated relative paths without "."
// or ".." elements (fs.ValidPath); names whose last element begins with "." are the
// store's own temporary names and never listed.
type Store interface {
	// Put writes objs, each atomically: a reader sees an object's old content or its
	// new content whole, never part of it. When Put returns, all of them are durable.
	// The objects of one call may become visible in any order; an object of a later
	// call never becomes visible before those of an earlier one. On error some objects
	// may have been written, each whole.
	Put(ctx context.Context, objs ...Object) error
	// Open reads an object.
	Open(ctx context.Context, name string) (io.ReadCloser, Info, error)
	// Stat describes an object.
	Stat(ctx context.Context, name string) (Info, error)
	// List calls fn for every object whose name begins with prefix, in name order.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete deletes objects; a name that holds none is not an error.
	Delete(ctx context.Context, names ...string) error
	// Lock takes the exclusive lock name, waiting while another process, on this
	// machine or another, holds it, until ctx ends. The context it returns is ctx until
	// the lock is lost (a lease that could not be renewed in time), then cancelled:
	// work done under the lock uses it. unlock releases the lock.
	Lock(ctx context.Context, name string) (held context.Context, unlock func(), err error)
	// String names the store for messages: a directory or s3://BUCKET/PREFIX.
	String() string
}

// ReadFile returns the content of an object.
func ReadFile(ctx context.Context, s Store, name string) ([]byte, Info, error) {
	r, info, err := s.Open(ctx, name)
	if err != nil {
		return nil, Info{}, err
	}
	defer r.Close()
	var b bytes.Buffer
	if info.Size > 0 {
		b.Grow(int(info.Size))
	}
	if _, err := b.ReadFrom(r); err != nil {
		return nil, Info{}, fmt.Errorf("read %s/%s: %w", s, name, err)
	}
	return b.Bytes(), info, nil
}

// checkName refuses names that are not a store's: absolute, with "." or ".." elements,
// or a temporary name.
func checkName(name string) error {
	if !fs.ValidPath(name) || name == "." || strings.HasPrefix(path.Base(name), ".") {
		return fmt.Errorf("storage: bad object name %q", name)
	}
	return nil
}

// checkPrefix refuses a List prefix that could reach outside the store.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if !fs.ValidPath(strings.TrimSuffix(prefix, "/")) {
		return fmt.Errorf("storage: bad prefix %q", prefix)
	}
	return nil
}

// Sub returns the store of the objects of s under dir: its names are dir/NAME in s.
func Sub(s Store, dir string) Store {
	if d, ok := s.(*Dir); ok {
		return &Dir{root: path.Join(d.root, dir)}
	}
	return &sub{s: s, dir: strings.Trim(dir, "/") + "/"}
}

// sub is a Store within another: every name gets a prefix.
type sub struct {
	s   Store
	dir string // with a trailing slash
}

func (s *sub) Put(ctx context.Context, objs ...Object) error {
	c := make([]Object, len(objs))
	for i, o := range objs {
		o.Name = s.dir + o.Name
		c[i] = o
	}
	return s.s.Put(ctx, c...)
}

func (s *sub) Open(ctx context.Context, name string) (io.ReadCloser, Info, error) {
	r, info, err := s.s.Open(ctx, s.dir+name)
	info.Name = strings.TrimPrefix(info.Name, s.dir)
	return r, info, err
}

func (s *sub) Stat(ctx context.Context, name string) (Info, error) {
	info, err := s.s.Stat(ctx, s.dir+name)
	info.Name = strings.TrimPrefix(info.Name, s.dir)
	return info, err
}

func (s *sub) List(ctx context.Context, prefix string, fn func(Info) error) error {
	return s.s.List(ctx, s.dir+prefix, func(info Info) error {
		info.Name = strings.TrimPrefix(info.Name, s.dir)
		return fn(info)
	})
}

func (s *sub) Delete(ctx context.Context, names ...string) error {
	c := make([]string, len(names))
	for i, n := range names {
		c[i] = s.dir + n
	}
	return s.s.Delete(ctx, c...)
}

func (s *sub) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	return s.s.Lock(ctx, s.dir+name)
}

func (s *sub) String() string {
	return strings.TrimSuffix(s.s.String(), "/") + "/" + strings.TrimSuffix(s.dir, "/")
}
