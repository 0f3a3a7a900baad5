package repo

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
)

// TestIndexOrder: the index lists packages by name, version (dpkg's order) and
// architecture however they arrived, in batches, replaced or removed (the cache is merged,
// not sorted again), and a rescan gives the same index.
func TestIndexOrder(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	inc := filepath.Join(dir, IncomingDir)
	rnd := rand.New(rand.NewPCG(3, 4))
	versions := []string{"1.0", "1.10", "1.9", "2.0~rc1", "2.0", "1:0.1"}
	pk := filepath.Join(dir, "public/dists/stable/main/binary-amd64/Packages")
	for batch := range 4 {
		for range 8 {
			name := fmt.Sprintf("ord%d", rnd.IntN(12))
			v := versions[rnd.IntN(len(versions))]
			quickDeb(t, inc, name, v)
		}
		if _, err := Publish(t.Context(), dir, PublishOptions{KeepVersions: 3}); err != nil {
			t.Fatal(err)
		}
		ps, err := control.Parse(bytes.NewReader(mustRead(t, pk)))
		if err != nil {
			t.Fatal(err)
		}
		sorted := slices.IsSortedFunc(ps, func(a, b control.Paragraph) int {
			if c := strings.Compare(a.Get("Package"), b.Get("Package")); c != 0 {
				return c
			}
			va, _ := version.Parse(a.Get("Version"))
			vb, _ := version.Parse(b.Get("Version"))
			return version.Compare(va, vb)
		})
		if !sorted {
			t.Fatalf("batch %d: index not in order:\n%s", batch, mustRead(t, pk))
		}
	}
	want := mustRead(t, pk)
	if _, err := Publish(t.Context(), dir, PublishOptions{Rescan: true}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, cacheFile))
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil || !bytes.Equal(mustRead(t, pk), want) {
		t.Errorf("index after a rescan differs (%v)", err)
	}
}
