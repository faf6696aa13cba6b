package archive

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

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

// An upload's cost at 10 and at 10,000 segments in the epoch, on a real
// versitygw: with pages the manifest written stays the same size, so the
// two cost about the same; "unpaged" is the same 10,000 segments all
// inline (the manifest before pages), the baseline the ratio is against.
// The epochs are built in memory first, and their manifest and pages
// copied to the store (Append reads neither segments nor states).
func BenchmarkAppendLongEpoch(b *testing.B) {
	_, s3 := newStore(b)
	for _, bc := range []struct {
		name    string
		n       int
		unpaged bool
	}{{"segments=10", 10, false}, {"segments=10000", 10_000, false}, {"segments=10000-unpaged", 10_000, true}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := testCtx(b)
			id := "bench-" + strings.ReplaceAll(strings.TrimPrefix(bc.name, "segments="), "-", "")
			mem := newMemStore()
			c, cut := longEpoch(b, mem, id, bc.n)
			if bc.unpaged {
				h, err := Resolve(ctx, mem, id)
				if err != nil {
					b.Fatal(err)
				}
				all, err := h.All(ctx)
				if err != nil {
					b.Fatal(err)
				}
				m := h.Top
				m.Page, m.Segments = nil, segments(all)
				enc, err := m.Encode()
				if err != nil {
					b.Fatal(err)
				}
				mem.objs = map[string][]byte{ManifestKey(id, 1): enc}
				setPaging(b, 1<<30, 1)
			}
			for k, v := range mem.objs {
				if strings.Contains(k, "/manifests/") || strings.Contains(k, "/pages/") {
					if err := s3.Put(ctx, k, bytes.NewReader(v), int64(len(v)), false); err != nil {
						b.Fatal(err)
					}
				}
			}
			w, err := Claim(ctx, s3, ClaimOptions{ActorID: id, Epoch: 1})
			if err != nil {
				b.Fatal(err)
			}
			size := 0
			for b.Loop() {
				c.tick("next")
				if _, err := w.Append(ctx, c.cut(&cut), c.state); err != nil {
					b.Fatal(err)
				}
				m := w.Manifest()
				enc, _ := m.Encode()
				size = max(size, len(enc))
			}
			b.ReportMetric(float64(size), "manifest-bytes")
		})
	}
}

// A pass of the orphan collection over a 10,000-segment epoch (10,000
// segments, as many states, 39 pages: 20,041 keys), in memory, so that
// the figure is the collector's own work: "full" decides every key (all
// older than the grace), against "listing-only", where every key is
// younger than the grace and the pass only lists them. Reported: the
// pages read per pass.
func BenchmarkCollectorPass(b *testing.B) {
	ctx := testCtx(b)
	mem := newMemStore()
	longEpoch(b, mem, "bench-collect", 10_000)
	keys := len(mem.objs)
	for name, now := range map[string]func() time.Time{
		"full":         time.Now,
		"listing-only": func() time.Time { return time.Time{} },
	} {
		b.Run(name, func(b *testing.B) {
			cs := &countingStore{Store: mem}
			col, err := NewCollector(cs, CollectOptions{Grace: time.Nanosecond, KeysPerPass: keys + 1, Now: now})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				res, err := col.Pass(ctx)
				if err != nil || res.Collected != 0 || res.Listed != keys {
					b.Fatalf("%+v %v", res, err)
				}
			}
			pages, _ := cs.reads()
			b.ReportMetric(float64(pages)/float64(b.N), "pages/pass")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(keys), "ns/key")
		})
	}
}

// longEpoch writes an epoch 1 of n segments of a ticking actor id to st
// (a segment a tick), and returns its chain and where the next segment
// starts.
func longEpoch(b *testing.B, st objstore.Store, id string, n int) (*actorChain, int) {
	b.Helper()
	ctx := testCtx(b)
	w, err := Claim(ctx, st, ClaimOptions{ActorID: id, Epoch: 1})
	if err != nil {
		b.Fatal(err)
	}
	c := &actorChain{}
	cut := 0
	c.start("0")
	for i := range n {
		if i > 0 {
			c.tick(fmt.Sprintf("count=%d", i))
		}
		if _, err := w.Append(ctx, c.cut(&cut), c.state); err != nil {
			b.Fatal(err)
		}
	}
	return c, cut
}
