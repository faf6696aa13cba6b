package archive

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// archiveTicks archives an actor that ticked events times (each tick
// changes its state) in segments of perSegment events, in one epoch, on a
// real versitygw, and returns the store and the chain file's bytes.
func archiveTicks(b *testing.B, events, perSegment int) (objstore.Store, []byte) {
	b.Helper()
	_, st := newStore(b)
	ctx := testCtx(b)
	w, err := Claim(ctx, st, ClaimOptions{ActorID: actorID, Epoch: 1})
	if err != nil {
		b.Fatal(err)
	}
	c := &actorChain{}
	cut := 0
	c.start("0")
	for i := 1; len(c.ends) < events; i++ {
		c.tick(fmt.Sprintf("count=%d", i))
		if len(c.ends)%perSegment == 0 || len(c.ends) == events {
			if _, err := w.Append(ctx, c.cut(&cut), c.state); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st, append([]byte(chain.Magic), c.recs...)
}

// Restoring an actor with a 100k-event history (issue 13's target: within
// a second from a store on loopback) reads the manifest and the segment
// holding the last state. Verify reads all of it; the baseline is
// verifying the same chain from memory, so the ratio is what the store
// costs.
func BenchmarkArchive100k(b *testing.B) {
	st, file := archiveTicks(b, 100_000, 1000)
	ctx := testCtx(b)
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			if _, err := Restore(ctx, st, actorID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		for b.Loop() {
			rep, err := Verify(ctx, st, actorID)
			if err != nil || rep.Length != 100_000 {
				b.Fatal(rep, err)
			}
		}
	})
	b.Run("baseline-verify-in-memory", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		for b.Loop() {
			rep, err := chain.Verify(bytes.NewReader(file))
			if err != nil || !rep.OK() || rep.Length != 100_000 {
				b.Fatal(rep, err)
			}
		}
	})
}
