package host

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// The status head may lag the chain (heads are published at a bounded
// rate), so it may lie before a rotation: the local chain still goes on
// when a rotated file holds it. A head no file holds moves the chain
// aside, its rotated files with it, so that the new segment's rotations
// never find them.
func TestContinuationAcrossARotation(t *testing.T) {
	dir := t.TempDir()
	c, _, err := chain.Open(actordir.ChainPath(dir), chain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var heads []chain.Hash
	for range 4 {
		h, err := c.Append(chain.KindTick, "tick", nil)
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, h)
	}
	if _, err := c.Rotate(actordir.RotatedChainPath(dir, 4), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := actordir.WriteRotatedState(dir, 4, actordir.SavedState{Seq: 4, Durable: 4}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	status := func(h chain.Hash, n int64) *v1alpha1.ChainStatus {
		return &v1alpha1.ChainStatus{Head: h.String(), Length: n}
	}
	link, moved, err := continuation(dir, status(heads[2], 3), time.Now())
	if err != nil || link != nil || moved != "" {
		t.Fatalf("a head in the rotated file: link %+v, moved %q, %v; want the chain to go on", link, moved, err)
	}
	var other chain.Hash
	other[0] = 1
	link, moved, err = continuation(dir, status(other, 3), time.Now())
	if err != nil || link == nil || moved == "" {
		t.Fatalf("a head no file holds: link %+v, moved %q, %v; want the chain moved aside", link, moved, err)
	}
	rotated, orphans, err := actordir.ListRotated(dir)
	if err != nil || len(rotated)+len(orphans) != 0 {
		t.Fatalf("rotated files left beside the new segment: %+v %v %v", rotated, orphans, err)
	}
	entries, _ := os.ReadDir(dir)
	var aside int
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".old" {
			aside++
		}
	}
	if aside != 3 { // chain.log, the rotated file and its state
		t.Fatalf("%d files moved aside, want 3", aside)
	}
}
