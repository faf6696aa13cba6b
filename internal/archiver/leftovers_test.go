package archiver

import (
	"context"
	"testing"
	"time"

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
