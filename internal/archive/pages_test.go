package archive

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
)

// A long-lived epoch with a segment per tick (the host's ticking actor):
// the manifest stays under a size that does not depend on how many
// segments the epoch has, the history verifies, a restore reads no page
// (or only the ones holding what it needs), and a later epoch whose base
// lies in a stale epoch's paged region resolves to exactly what it
// accepted.
func TestPagedEpoch(t *testing.T) {
	const per, keep = 8, 2
	setPaging(t, per, keep)
	_, s3 := newStore(t)
	st := &countingStore{Store: s3}
	ctx := testCtx(t)

	w1 := mustClaim(t, st, actorID, 1)
	c := &actorChain{}
	cut := 0
	c.start("0")
	mustAppend(t, w1, c.cut(&cut), c.state)
	// The bound: the header and base, one page ref and the most segments
	// kept inline, at a generous 600 bytes each. Nothing in it grows with
	// the epoch.
	const bound = 2048 + 600 + (per+keep)*600
	// 600 segments (75 pages) keep make test cheap; the long run takes
	// thousands.
	n := 600
	if os.Getenv("TROUPE_TEST_LONG") != "" {
		n = 3000
	}
	largest := 0
	for i := 1; i <= n; i++ {
		c.tick(fmt.Sprintf("count=%d", i))
		mustAppend(t, w1, c.cut(&cut), c.state)
		if i%50 == 0 || i > n-per {
			if size := len(get(t, st, ManifestKey(actorID, 1))); size > largest {
				largest = size
			}
		}
	}
	if largest > bound {
		t.Fatalf("the manifest reached %d bytes over %d segments, want at most %d whatever the count", largest, n+1, bound)
	}
	m := w1.Manifest()
	if m.Page == nil || m.Page.Total+int64(len(m.Segments)) != int64(n+1) || len(m.Segments) >= per+keep || m.Page.Pages != int(m.Page.Total)/per {
		t.Fatalf("manifest after %d segments: page %+v, %d inline", n+1, m.Page, len(m.Segments))
	}
	t.Logf("%d segments: manifest at most %d bytes, %d pages", n+1, largest, m.Page.Pages)

	rep, err := Verify(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Segments != n+1 || rep.Length != c.link.Length || rep.Head != c.link.Head {
		t.Fatalf("verify: %d segments, end %d %s; want %d, %d %s", rep.Segments, rep.Length, rep.Head.Short(), n+1, c.link.Length, c.link.Head.Short())
	}
	if pages, _ := st.reads(); pages != m.Page.Pages {
		t.Fatalf("verify read %d pages, the epoch has %d", pages, m.Page.Pages)
	}

	// The tip holds the state: a restore reads the manifest and one
	// segment, no page.
	r, err := Restore(ctx, st, actorID)
	if err != nil || string(r.State) != fmt.Sprintf("count=%d", n) || r.Length != c.link.Length || r.Verified != 1 {
		t.Fatalf("restore: %+v %v", r, err)
	}
	if pages, segs := st.reads(); pages != 0 || segs != 1 {
		t.Fatalf("restore read %d pages and %d segments, want none and 1", pages, segs)
	}
	// So does the host's restore, asked whether it holds the status head.
	if r, err := RestoreThrough(ctx, st, actorID, &c.link); err != nil || !r.Holds {
		t.Fatalf("restore through the head: %+v %v", r, err)
	}
	if pages, segs := st.reads(); pages != 0 || segs != 1 {
		t.Fatalf("restore through the head read %d pages and %d segments, want none and 1", pages, segs)
	}

	// Segments with no state event push the state's segment into a page:
	// a restore walks back to that page only.
	const quiet = 3*per + 1
	for i := range quiet {
		c.log(fmt.Sprintf("quiet %d", i))
		mustAppend(t, w1, c.cut(&cut), c.state)
	}
	st.reads()
	r, err = Restore(ctx, st, actorID)
	if err != nil || string(r.State) != fmt.Sprintf("count=%d", n) || r.Verified != quiet+1 {
		t.Fatalf("restore after quiet segments: %+v %v", r, err)
	}
	if pages, segs := st.reads(); pages > quiet/per+1 || segs != quiet+1 {
		t.Fatalf("restore read %d pages and %d segments, want at most %d and %d", pages, segs, quiet/per+1, quiet+1)
	}
	// A head the cluster knew long ago is found in its page.
	old := chain.Link{Length: 40}
	old.Head = headAt(t, c, 39)
	r, err = RestoreThrough(ctx, st, actorID, &old)
	if err != nil || !r.Holds {
		t.Fatalf("restore through seq 39: %+v %v", r, err)
	}
	if pages, _ := st.reads(); pages > int(m.Page.Pages)+4 {
		t.Fatalf("restore through an old head read %d pages", pages)
	}

	// The actor moves: epoch 2 accepts epoch 1's tip. Epoch 1's host,
	// stale, keeps uploading past the guard: its late segments page the
	// accepted one away in its manifest.
	accepted := w1.Manifest().Segments
	w2 := mustClaim(t, st, actorID, 2)
	base := accepted[len(accepted)-1]
	lateFrom := c.link
	for i := range 2 * per {
		c.tick(fmt.Sprintf("stale-%d", i))
		forceAppend(t, w1, c.cut(&cut), c.state)
	}
	if m1, err := loadManifest(ctx, st, actorID, 1); err != nil || indexOf(m1.Segments, &base) >= 0 {
		t.Fatalf("the accepted segment should be in a page of epoch 1 by now: %v", err)
	}
	tip, _ := w2.Tip()
	if tip != lateFrom {
		t.Fatalf("epoch 2 continues %+v, want %+v", tip, lateFrom)
	}
	c2 := continueFrom(tip, State{HasState: true, Data: []byte(fmt.Sprintf("count=%d", n))})
	c2.tick("moved")
	cut2 := 0
	mustAppend(t, w2, c2.cut(&cut2), c2.state)

	st.reads()
	h, err := Resolve(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	// Finding the base reads the pages from epoch 1's newest back to the
	// one holding it: 2 here, never the whole epoch.
	if pages, segs := st.reads(); pages > 3 || segs != 0 {
		t.Fatalf("resolve read %d pages and %d segments", pages, segs)
	}
	want := n + 1 + quiet + 1
	if h.Len() != want || h.Tip().Epoch != 2 || len(h.Ignored) != 0 {
		t.Fatalf("history: %d segments, tip in epoch %d, ignored %v; want %d, 2, none", h.Len(), h.Tip().Epoch, h.Ignored, want)
	}
	all := segs(t, h)
	if len(all) != want || !reflect.DeepEqual(all[want-2].Segment, base) {
		t.Fatalf("history lists %d segments, the accepted one at %d", len(all), indexOf(segments(all), &base))
	}
	if rep, err := Verify(ctx, st, actorID); err != nil || rep.Length != c2.link.Length {
		t.Fatalf("verify after the move: %+v %v", rep, err)
	}
	if r, err := Restore(ctx, st, actorID); err != nil || string(r.State) != "moved" {
		t.Fatalf("restore after the move: %+v %v", r, err)
	}

	// A damaged page: Verify says so; a restore that needs no page does
	// not read it.
	ref := w1.Manifest().Page
	for range 10 {
		pg, err := loadPage(ctx, st, actorID, 1, ref)
		if err != nil || pg.Prev == nil {
			t.Fatalf("page %+v: %v", ref, err)
		}
		ref = pg.Prev
	}
	rewrite(t, st, PageKey(actorID, 1, ref), func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b })
	if _, err := Verify(ctx, st, actorID); !errors.Is(err, ErrBroken) {
		t.Fatalf("verify of a damaged page: %v, want ErrBroken", err)
	}
	if _, err := Restore(ctx, st, actorID); err != nil {
		t.Fatalf("restore needing no damaged page: %v", err)
	}
}

// headAt is the hash of event seq of c.
func headAt(t *testing.T, c *actorChain, seq int) chain.Hash {
	t.Helper()
	rep, err := chain.Verify(bytes.NewReader(append([]byte(chain.Magic), c.recs[:c.ends[seq]]...)))
	if err != nil || !rep.OK() {
		t.Fatalf("chain up to %d: %v", seq, err)
	}
	return rep.Head
}

func segments(ps []Placed) []Segment {
	out := make([]Segment, len(ps))
	for i := range ps {
		out[i] = ps[i].Segment
	}
	return out
}
