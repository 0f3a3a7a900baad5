package repo

// Where a repository's parts live. DIR always keeps repo.conf, the signing key and the
// index cache (private/); the published tree and the uploads may be elsewhere:
//
//	         published tree (pub)   publish state and lock (meta)   uploads (inc)
//	on disk  DIR/public             DIR/private                     DIR/incoming
//	on S3    s3://B/P               s3://B/P/.upds                  s3://B2/P2 (Incoming)
//
// A publish is the same code over either (interp/storage): every machine that publishes to
// one bucket shares its state and its lock.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/upds/upds/interp/storage"
	"github.com/upds/upds/stdlib/setup"
)

// metaDir is the prefix of the publish state in a bucket.
const metaDir = ".upds"

// stores are the places of a repository's parts.
type stores struct {
	pub  storage.Store // the published tree: dists/, pool/, key.asc, setup.sh
	meta storage.Store // state.json, pool.dirty, publish.lock
	inc  storage.Store // uploads, when they arrive in a bucket; nil: DIR/incoming
	s3   bool          // pub is in a bucket, which other machines may publish to
}

// openStores opens the stores cfg names for the repository in dir.
func openStores(ctx context.Context, dir string, cfg Config) (*stores, error) {
	st := &stores{}
	if cfg.Storage == "" {
		st.pub = storage.NewDir(filepath.Join(dir, PublicDir))
		st.meta = storage.NewDir(filepath.Join(dir, PrivateDir))
	} else {
		s3, err := storage.NewS3(ctx, cfg.Storage)
		if err != nil {
			return nil, err
		}
		st.pub, st.meta, st.s3 = s3, storage.Sub(s3, metaDir), true
	}
	if cfg.Incoming != "" {
		inc, err := storage.NewS3(ctx, cfg.Incoming)
		if err != nil {
			return nil, err
		}
		st.inc = inc
	}
	return st, nil
}

// httpURL is where apt reads a published tree in a bucket; "" on disk.
func (st *stores) httpURL() string {
	if s3, ok := st.pub.(*storage.S3); ok {
		return s3.HTTPURL()
	}
	return ""
}

// checkNew refuses to make a repository where one is published, unless it is in a bucket
// and signed with the same key: then the new directory is one more machine that
// publishes to it (repo init --import-key with the key of the first), and joined is true.
func (st *stores) checkNew(ctx context.Context, pub []byte) (joined bool, err error) {
	if !st.s3 {
		return false, nil
	}
	old, _, err := storage.ReadFile(ctx, st.pub, "key.asc")
	if errors.Is(err, storage.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("repo init: %w", err)
	}
	a, aerr := setup.Fingerprint(old)
	b, berr := setup.Fingerprint(pub)
	if aerr != nil || berr != nil || a != b {
		return false, withKind(ErrExists, fmt.Errorf("repo init: %s already holds a repository signed with another key; to publish to it from here too, use --import-key with its signing key", st.pub))
	}
	return true, nil
}
