package archiver

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/archive"
)

// A run that ended without uploading the rest of its chain (its host
// crashed, or stopped while the store was down) leaves events on the
// node; the host that starts next on the node uploads them under the
// epoch that wrote them, unless a later epoch claimed from elsewhere.
func TestLeftoversAreUploadedUnderTheirEpoch(t *testing.T) {
	_, st := newStore(t)
	ar := newArchiver(t, Options{RecoveryPoint: time.Hour, SegmentBytes: 8 << 20})
	e := newEngine(t)
	dir := t.TempDir()

	a := startTicker(t, e, dir, 100*time.Millisecond)
	var sts statuses
	s := ship(t, ar, claim(t, st, 1), a, &sts)
	// One upload mid-run, then the run ends without a flush.
	_, l := a.Head()
	eventually(t, 30*time.Second, "a few ticks", func() bool { _, n := a.Head(); return n > l+3 })
	s.upMu.Lock()
	s.step(testCtx(t))
	s.upMu.Unlock()
	s.Close()
	mid := archived(t, st)
	if mid == 0 {
		t.Fatal("nothing archived mid-run")
	}
	eventually(t, 30*time.Second, "a few more ticks", func() bool { _, n := a.Head(); return n > mid+3 })
	if err := a.Stop(context.Background(), "crash"); err != nil {
		t.Fatal(err)
	}
	head, length := a.Head()
	if archived(t, st) >= length {
		t.Fatal("the archive holds the whole run: nothing left over")
	}

	res, err := ar.ShipLeftovers(testCtx(t), st, dir, "host-b", "node-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != "" || res.Epoch != 1 || res.From != mid || res.To != length {
		t.Fatalf("leftovers: %+v, want epoch 1 from %d to %d", res, mid, length)
	}
	rep := verifyEndsAt(t, st, a)
	if rep.Head != head || len(rep.History.Epochs) != 1 {
		t.Fatalf("history %+v", rep.History)
	}
	// Nothing left: a second pass uploads nothing.
	if res, err := ar.ShipLeftovers(testCtx(t), st, dir, "host-b", "node-a", 0); err != nil || res.From != length || res.To != length {
		t.Fatalf("a second pass: %+v %v", res, err)
	}

	// A later epoch claims from another node; events written here since
	// are left on the node.
	if _, err := archive.Claim(testCtx(t), st, archive.ClaimOptions{ActorID: actorID, Epoch: 2, Host: "host-c", Node: "node-b"}); err != nil {
		t.Fatal(err)
	}
	b := startTicker(t, e, dir, 100*time.Millisecond)
	eventually(t, 30*time.Second, "a few ticks", func() bool { _, n := b.Head(); return n > length+3 })
	if err := b.Stop(context.Background(), "crash"); err != nil {
		t.Fatal(err)
	}
	res, err = ar.ShipLeftovers(testCtx(t), st, dir, "host-b", "node-a", 0)
	if err != nil || res.Skipped == "" {
		t.Fatalf("leftovers after a later epoch claimed elsewhere: %+v %v, want skipped", res, err)
	}
	if got := archived(t, st); got != length {
		t.Fatalf("the archive grew to %d after a later epoch's claim, want %d", got, length)
	}
	// A run on the directory can start after: the lock was released.
	c := startTicker(t, e, dir, 100*time.Millisecond)
	if err := c.Stop(context.Background(), "over"); err != nil {
		t.Fatal(err)
	}
}

// An Actor deleted while its node was away has a tombstone in the store:
// the node's leftovers are not uploaded (they would recreate the archive
// the retention removes), neither before the expiry nor after it, and the
// directory stays on the node as it was. A tombstone that cannot be read
// is an error, and nothing is uploaded on it either.
func TestLeftoversOfADeletedActorAreNotUploaded(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	ar := newArchiver(t, Options{RecoveryPoint: time.Hour, SegmentBytes: 8 << 20})
	e := newEngine(t)
	dir := t.TempDir()

	a := startTicker(t, e, dir, 50*time.Millisecond)
	claim(t, st, 1)
	eventually(t, 30*time.Second, "a few ticks", func() bool { _, n := a.Head(); return n > 5 })
	if err := a.Stop(context.Background(), "crash"); err != nil {
		t.Fatal(err)
	}
	chainBefore, err := os.ReadFile(actordir.ChainPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	keys := func() []string {
		t.Helper()
		k, err := st.List(ctx, "actors/"+actorID+"/")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	claimed := keys()
	if len(claimed) == 0 {
		t.Fatal("the claim wrote nothing")
	}

	// A tombstone that does not decode: an error, nothing uploaded.
	bad := []byte("{")
	if err := st.Put(ctx, archive.TombstoneKey(actorID), bytes.NewReader(bad), int64(len(bad)), false); err != nil {
		t.Fatal(err)
	}
	if res, err := ar.ShipLeftovers(ctx, st, dir, "host-b", "node-a", 0); err == nil {
		t.Fatalf("leftovers with an unreadable tombstone: %+v, want an error", res)
	}
	if got := keys(); !slices.Equal(got, claimed) {
		t.Fatalf("objects %v after an unreadable tombstone, want %v", got, claimed)
	}

	ts := archive.Tombstone{ActorID: actorID, Namespace: "team-a", Name: "counter", DeletedAt: time.Now()}
	if err := archive.PutTombstone(ctx, st, ts); err != nil {
		t.Fatal(err)
	}
	puts := st.puts.Load()
	res, err := ar.ShipLeftovers(ctx, st, dir, "host-b", "node-a", 0)
	if err != nil || !strings.Contains(res.Skipped, "deleted") {
		t.Fatalf("leftovers of a deleted Actor: %+v %v, want skipped", res, err)
	}
	if n := st.puts.Load() - puts; n != 0 {
		t.Fatalf("%d writes for a deleted Actor's leftovers, want none", n)
	}
	if got := keys(); !slices.Equal(got, claimed) {
		t.Fatalf("objects %v after the leftovers of a deleted Actor, want %v", got, claimed)
	}

	// The retention expires the archive (and then the tombstone): the
	// node's leftovers do not bring it back.
	if _, err := archive.Expire(ctx, st, ts); err != nil {
		t.Fatal(err)
	}
	res, err = ar.ShipLeftovers(ctx, st, dir, "host-b", "node-a", 0)
	if err != nil || res.Skipped == "" {
		t.Fatalf("leftovers after the expiry: %+v %v, want skipped", res, err)
	}
	if got := keys(); len(got) != 0 {
		t.Fatalf("the expired archive came back: %v", got)
	}
	chainAfter, err := os.ReadFile(actordir.ChainPath(dir))
	if err != nil || !bytes.Equal(chainAfter, chainBefore) {
		t.Fatalf("the node's chain changed (%d bytes, was %d): %v", len(chainAfter), len(chainBefore), err)
	}
}
