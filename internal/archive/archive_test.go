package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

const actorID = "0b7c2f8e-3c1d-4e55-9a51-2f0c6a1b9d42"

// An actor ticks on a host (epoch 1), which archives three segments; it
// moves (epoch 2), the new host restores its state and continues the chain
// with a SegmentStart; the archive verifies end to end across both epochs
// and restores the latest state.
func TestRoundTripAcrossAMove(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)

	w1 := mustClaim(t, st, actorID, 1)
	if _, ok := w1.Tip(); ok {
		t.Fatal("a fresh archive has a tip")
	}
	c := &actorChain{}
	cut := 0
	c.start("0")
	mustAppend(t, w1, c.cut(&cut), c.state)
	c.tick("1")
	c.log("hello")
	c.tick("2")
	mustAppend(t, w1, c.cut(&cut), c.state)
	c.log("no state change") // a segment without a state event keeps the state before
	mustAppend(t, w1, c.cut(&cut), c.state)

	r, err := Restore(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.State) != "2" || !r.HasState || r.Head != c.link.Head || r.Length != c.link.Length || *r.StateEvent != 5 || r.Epoch != 1 {
		t.Fatalf("restored %+v (state %q), want state 2 at event 5, head %s length %d", r, r.State, c.link.Head.Short(), c.link.Length)
	}
	// The state's event is in the second segment: restore read it and the tip.
	if r.Verified != 2 {
		t.Errorf("restore verified %d segments, want 2", r.Verified)
	}

	// The move: epoch 2 continues from the restored end.
	w2 := mustClaim(t, st, actorID, 2)
	if tip, ok := w2.Tip(); !ok || tip != (chain.Link{Length: r.Length, Head: r.Head}) {
		t.Fatalf("epoch 2's tip %+v %v, want the restored end", tip, ok)
	}
	c2 := continueFrom(chain.Link{Length: r.Length, Head: r.Head}, State{HasState: true, Data: r.State})
	cut2 := 0
	c2.tick("3")
	mustAppend(t, w2, c2.cut(&cut2), c2.state)

	rep, err := Verify(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != c2.link.Length || rep.Head != c2.link.Head || rep.Length != c2.link.Length ||
		len(rep.History.Segments) != 4 || !slices.Equal(rep.History.Epochs, []int64{1, 2}) || len(rep.History.Ignored) != 0 ||
		rep.Origin != (chain.Link{}) || rep.OriginKind != chain.KindActorStart || rep.States != 3 {
		t.Fatalf("verified %+v, history %+v", rep, rep.History)
	}
	r2, err := Restore(ctx, st, actorID)
	if err != nil || string(r2.State) != "3" || r2.Epoch != 2 || r2.Head != c2.link.Head {
		t.Fatalf("restore after the move: %+v %v", r2, err)
	}

	// The host of epoch 2 starts again (same assignment): its claim
	// continues the manifest it wrote.
	w2b := mustClaim(t, st, actorID, 2)
	if tip, _ := w2b.Tip(); tip != c2.link {
		t.Fatalf("re-claim's tip %+v, want %+v", tip, c2.link)
	}
}

// A host that lost the assignment keeps uploading: its late segment is
// never part of the history, whether the guard before its manifest write
// catches it (ErrFenced) or the write slips in after the later epoch's
// claim.
func TestStaleEpochsLateWritesAreIgnored(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)

	w1 := mustClaim(t, st, actorID, 1)
	c := &actorChain{}
	cut := 0
	c.start("0")
	c.tick("1")
	accepted := mustAppend(t, w1, c.cut(&cut), c.state)

	// The actor moves: epoch 2 claims, and takes epoch 1's first segment.
	w2 := mustClaim(t, st, actorID, 2)
	c.tick("stale-1")
	late := c.cut(&cut)
	if _, err := w1.Append(ctx, late, c.state); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale append: %v, want ErrFenced", err)
	}
	// The guard is a list before a put: a stale host can pass it just before
	// the claim. Write what it would then write, bypassing the guard.
	staleW := &Writer{st: st, m: &Manifest{}, tip: nil}
	*staleW.m = w1.Manifest()
	staleW.tip = &staleW.m.Segments[len(staleW.m.Segments)-1]
	staleW.m.Host = "stale"
	forceAppend(t, staleW, late, c.state)

	// Epoch 2 writes its own continuation of the accepted segment.
	tip, _ := w2.Tip()
	c2 := continueFrom(tip, State{HasState: true, Data: []byte("1")})
	c2.tick("2")
	cut2 := 0
	mustAppend(t, w2, c2.cut(&cut2), c2.state)

	h, err := Resolve(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Segments) != 2 || h.Segments[0].Segment.Sha256 != accepted.Sha256 || h.Segments[1].Epoch != 2 {
		t.Fatalf("history %+v: want epoch 1's accepted segment then epoch 2's", h.Segments)
	}
	if m1, err := loadManifest(ctx, st, actorID, 1); err != nil || len(m1.Segments) != 2 {
		t.Fatalf("the stale host's manifest should list its late segment (and be ignored): %+v %v", m1, err)
	}
	if _, err := Verify(ctx, st, actorID); err != nil {
		t.Fatal(err)
	}
	if r, err := Restore(ctx, st, actorID); err != nil || string(r.State) != "2" {
		t.Fatalf("restore: %+v %v", r, err)
	}

	// An epoch lower than one with a manifest cannot claim; an epoch that
	// never wrote (3 here) loses nothing when 4 claims after it.
	if _, err := Claim(ctx, st, ClaimOptions{ActorID: actorID, Epoch: 1}); !errors.Is(err, ErrFenced) {
		t.Fatalf("claim by epoch 1 after 2: %v, want ErrFenced", err)
	}
	w4 := mustClaim(t, st, actorID, 4)
	if tip4, _ := w4.Tip(); tip4 != c2.link {
		t.Fatalf("epoch 4 continues %+v, want epoch 2's end %+v", tip4, c2.link)
	}
	// A stale epoch-2 manifest write after epoch 4's claim is ignored too.
	c2.tick("stale-2")
	forceAppend(t, w2, c2.cut(&cut2), c2.state)
	h, err = Resolve(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.Epochs, []int64{1, 2, 4}) || h.Tip().Head != c2.link.Head.String() && len(h.Segments) != 2 {
		t.Fatalf("after epoch 4's claim: epochs %v, %d segments", h.Epochs, len(h.Segments))
	}
	if got := h.Tip(); got.Length != tip.Length+2 {
		t.Fatalf("tip ends at %d: epoch 2's late segment was accepted", got.Length)
	}
	if _, err := Verify(ctx, st, actorID); err != nil {
		t.Fatal(err)
	}
}

// forceAppend does what Append does without the fence guard: a stale
// host's write that passed the guard just before a later claim.
func forceAppend(t *testing.T, w *Writer, seg []byte, s State) {
	t.Helper()
	ctx := testCtx(t)
	guarded := w.st
	w.st = unguarded{guarded, w.m.Epoch}
	defer func() { w.st = guarded }()
	if _, err := w.Append(ctx, seg, s); err != nil {
		t.Fatalf("forced append: %v", err)
	}
}

// unguarded hides manifests of epochs above its own from listings.
type unguarded struct {
	objstore.Store
	epoch int64
}

func (u unguarded) List(ctx context.Context, prefix string) ([]string, error) {
	keys, err := u.Store.List(ctx, prefix)
	var out []string
	for _, k := range keys {
		if e, ok := parseManifestKey(actorID, k); ok && e > u.epoch {
			continue
		}
		out = append(out, k)
	}
	return out, err
}

// A failure between the objects and the manifest leaves the history as it
// was: a segment is in a manifest only once it and its state are whole in
// the store; and the Writer can go on.
func TestFailedUploadsNeverReachTheManifest(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	for name, failKey := range map[string]string{"manifest": "/manifests/", "state": ".state", "segment": ".seg"} {
		t.Run(name, func(t *testing.T) {
			id := "actor-" + name
			fs := &failingStore{Store: st}
			w, err := Claim(ctx, fs, ClaimOptions{ActorID: id, Epoch: 1})
			if err != nil {
				t.Fatal(err)
			}
			c := &actorChain{}
			cut := 0
			c.start("0")
			mustAppend(t, w, c.cut(&cut), c.state)
			c.tick("1")
			seg := c.cut(&cut)
			fs.failSuffix.Store(&failKey)
			if _, err := w.Append(ctx, seg, c.state); err == nil {
				t.Fatal("an append whose upload failed succeeded")
			}
			h, err := Resolve(ctx, st, id)
			if err != nil || len(h.Segments) != 1 {
				t.Fatalf("after a failed %s upload: %+v %v", name, h, err)
			}
			if _, err := Verify(ctx, st, id); err != nil {
				t.Fatal(err)
			}
			fs.failSuffix.Store(nil)
			mustAppend(t, w, seg, c.state)
			if r, err := Restore(ctx, st, id); err != nil || string(r.State) != "1" {
				t.Fatalf("after the retry: %+v %v", r, err)
			}
		})
	}
}

// failingStore fails every Put of a key that contains *failSuffix, as an
// unreachable store or a crash before the upload finished would (a single
// PUT is atomic in S3: a failed one leaves nothing).
type failingStore struct {
	objstore.Store
	failSuffix atomic.Pointer[string]
}

func (f *failingStore) Put(ctx context.Context, key string, r io.Reader, size int64, ifAbsent bool) error {
	if s := f.failSuffix.Load(); s != nil && strings.Contains(key, *s) {
		return errors.New("injected failure")
	}
	return f.Store.Put(ctx, key, r, size, ifAbsent)
}

// Verify finds damage anywhere: in an object, a manifest, a link or a
// state; Restore refuses the same.
func TestVerifyDetectsDamage(t *testing.T) {
	cases := map[string]func(t *testing.T, st objstore.Store, h *History){
		"a flipped byte in a segment": func(t *testing.T, st objstore.Store, h *History) {
			rewrite(t, st, h.Segments[1].Key(actorID), func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b })
		},
		"a missing segment": func(t *testing.T, st objstore.Store, h *History) {
			del(t, st, h.Segments[0].Key(actorID))
		},
		"a missing segment of the earlier epoch": func(t *testing.T, st objstore.Store, h *History) {
			del(t, st, h.Segments[2].Key(actorID))
		},
		"a truncated segment": func(t *testing.T, st objstore.Store, h *History) {
			rewrite(t, st, h.Segments[2].Key(actorID), func(b []byte) []byte { return b[:len(b)-1] })
		},
		"a changed state": func(t *testing.T, st objstore.Store, h *History) {
			tip := h.Tip()
			rewrite(t, st, StateKey(actorID, tip.State.Epoch, &tip.State), func(b []byte) []byte { return append(b, '!') })
		},
		"a manifest that is not JSON": func(t *testing.T, st objstore.Store, h *History) {
			rewrite(t, st, ManifestKey(actorID, 1), func(b []byte) []byte { return b[:len(b)/2] })
		},
		"a manifest of another actor": func(t *testing.T, st objstore.Store, h *History) {
			editManifest(t, st, 2, func(m *Manifest) { m.ActorID = "someone-else" })
		},
		"a base the earlier epoch does not list": func(t *testing.T, st objstore.Store, h *History) {
			editManifest(t, st, 1, func(m *Manifest) { m.Segments = m.Segments[:1] })
		},
		"a manifest naming a state the chain does not record": func(t *testing.T, st objstore.Store, h *History) {
			// A consistent manifest and object, but not the chain's state.
			other := []byte("not the state")
			editManifest(t, st, 2, func(m *Manifest) {
				s := &m.Segments[len(m.Segments)-1].State
				s.Sha256, s.Bytes = sha(other), int64(len(other))
				put(t, st, StateKey(actorID, s.Epoch, s), other)
			})
		},
		"a segment swapped for another epoch's with a consistent manifest": func(t *testing.T, st objstore.Store, h *History) {
			// Epoch 2's manifest names epoch 1's first segment in place of
			// its own: every object matches its entry, but the links break.
			editManifest(t, st, 2, func(m *Manifest) {
				first := h.Segments[0]
				m.Segments[0].Bytes, m.Segments[0].Sha256 = first.Bytes, first.Sha256
				put(t, st, SegmentKey(actorID, 2, &m.Segments[0]), get(t, st, first.Key(actorID)))
			})
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			_, st := newStore(t)
			ctx := testCtx(t)
			buildTwoEpochs(t, st)
			h, err := Resolve(ctx, st, actorID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(ctx, st, actorID); err != nil {
				t.Fatalf("before the damage: %v", err)
			}
			damage(t, st, h)
			_, err = Verify(ctx, st, actorID)
			if !errors.Is(err, ErrBroken) {
				t.Fatalf("Verify after the damage: %v, want ErrBroken", err)
			}
			t.Log(err)
		})
	}
}

// Restore checks what it restores: a damaged tip, a state that is not the
// chain's, or a missing state object is refused, never restored.
func TestRestoreRefusesDamage(t *testing.T) {
	cases := map[string]func(t *testing.T, st objstore.Store, h *History){
		"a damaged tip": func(t *testing.T, st objstore.Store, h *History) {
			rewrite(t, st, h.Tip().Key(actorID), func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
		},
		"a missing state": func(t *testing.T, st objstore.Store, h *History) {
			tip := h.Tip()
			del(t, st, StateKey(actorID, tip.State.Epoch, &tip.State))
		},
		"an older state named as the latest": func(t *testing.T, st objstore.Store, h *History) {
			editManifest(t, st, 2, func(m *Manifest) {
				m.Segments[len(m.Segments)-1].State = h.Segments[0].State
			})
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			_, st := newStore(t)
			ctx := testCtx(t)
			buildTwoEpochs(t, st)
			h, err := Resolve(ctx, st, actorID)
			if err != nil {
				t.Fatal(err)
			}
			damage(t, st, h)
			r, err := Restore(ctx, st, actorID)
			if !errors.Is(err, ErrBroken) {
				t.Fatalf("Restore after the damage: %+v %v, want ErrBroken", r, err)
			}
			t.Log(err)
		})
	}
}

// buildTwoEpochs archives two segments in epoch 1 and two in epoch 2.
func buildTwoEpochs(t *testing.T, st objstore.Store) {
	t.Helper()
	w1 := mustClaim(t, st, actorID, 1)
	c := &actorChain{}
	cut := 0
	c.start("0")
	mustAppend(t, w1, c.cut(&cut), c.state)
	c.tick("1")
	c.log("x")
	mustAppend(t, w1, c.cut(&cut), c.state)
	w2 := mustClaim(t, st, actorID, 2)
	tip, _ := w2.Tip()
	c2 := continueFrom(tip, c.state)
	cut2 := 0
	c2.tick("2")
	mustAppend(t, w2, c2.cut(&cut2), c2.state)
	c2.tick("3")
	mustAppend(t, w2, c2.cut(&cut2), c2.state)
}

// Append refuses what would make the archive wrong: a segment that does
// not continue the tip, a state that is not the chain's.
func TestAppendRefuses(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	w := mustClaim(t, st, actorID, 1)
	c := &actorChain{}
	cut := 0
	c.start("0")
	first := c.cut(&cut)
	if _, err := w.Append(ctx, first, State{HasState: true, Data: []byte("not 0")}); err == nil || !strings.Contains(err.Error(), "the chain records state") {
		t.Fatalf("a wrong state: %v", err)
	}
	if _, err := w.Append(ctx, first, State{}); err == nil {
		t.Fatal("no state where the chain records one was accepted")
	}
	mustAppend(t, w, first, c.state)
	c.tick("1")
	c.tick("2")
	both := c.cut(&cut)
	if _, err := w.Append(ctx, both[c.ends[3]-c.ends[2]:], c.state); !errors.Is(err, chain.ErrCorrupt) {
		t.Fatalf("a segment that skips an event: %v, want ErrCorrupt", err)
	}
	if _, err := w.Append(ctx, first, c.state); !errors.Is(err, chain.ErrCorrupt) {
		t.Fatalf("the same segment again: %v, want ErrCorrupt", err)
	}
	h, err := Resolve(ctx, st, actorID)
	if err != nil || len(h.Segments) != 1 {
		t.Fatalf("refused appends changed the history: %+v %v", h, err)
	}
	if _, err := Resolve(ctx, st, "nobody"); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("an actor without an archive: %v, want ErrNoHistory", err)
	}
}

// The name index maps a name to every id it had, newest first, and a
// recreated Actor's id is not its predecessor's.
func TestNameIndex(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"id-old", "id-new"} {
		if err := PutIndex(ctx, st, IndexEntry{Namespace: "team-a", Name: "counter", ActorID: id, UID: "uid-" + id, Created: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := PutIndex(ctx, st, IndexEntry{Namespace: "team-a", Name: "counter-2", ActorID: "id-other", Created: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := LookupName(ctx, st, "team-a", "counter")
	if err != nil || len(got) != 2 || got[0].ActorID != "id-new" || got[1].ActorID != "id-old" || !got[0].Created.Equal(t0.Add(time.Hour)) {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	if got, err := LookupName(ctx, st, "team-b", "counter"); err != nil || len(got) != 0 {
		t.Fatalf("another namespace: %+v %v", got, err)
	}
	if _, err := LookupName(ctx, st, "team-a", "../x"); err == nil {
		t.Fatal("a name that is not a Kubernetes name was looked up")
	}
	if err := PutIndex(ctx, st, IndexEntry{Namespace: "team-a", Name: "counter", ActorID: "Bad ID", Created: t0}); err == nil {
		t.Fatal("an invalid id was indexed")
	}
	// An entry whose content names another actor than its key is refused.
	b, _ := (&IndexEntry{Format: IndexFormat, Namespace: "team-a", Name: "counter", ActorID: "id-evil", Created: t0}).Encode()
	put(t, st, IndexKey("team-a", "counter", "id-old"), b)
	if _, err := LookupName(ctx, st, "team-a", "counter"); err == nil || !strings.Contains(err.Error(), "id-evil") {
		t.Fatalf("a mismatched entry: %v", err)
	}
	if err := DeleteIndex(ctx, st, "team-a", "counter", "id-old"); err != nil {
		t.Fatal(err)
	}
	if got, err := LookupName(ctx, st, "team-a", "counter"); err != nil || len(got) != 1 || got[0].ActorID != "id-new" {
		t.Fatalf("after deleting: %+v %v", got, err)
	}
}

func get(t *testing.T, st objstore.Store, key string) []byte {
	t.Helper()
	b, err := st.Get(testCtx(t), key, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, st objstore.Store, key string, b []byte) {
	t.Helper()
	if err := st.Put(testCtx(t), key, bytes.NewReader(b), int64(len(b)), false); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, st objstore.Store, key string) {
	t.Helper()
	if err := st.Delete(testCtx(t), key); err != nil {
		t.Fatal(err)
	}
}

func rewrite(t *testing.T, st objstore.Store, key string, f func([]byte) []byte) {
	t.Helper()
	put(t, st, key, f(get(t, st, key)))
}

// editManifest rewrites epoch's manifest after f, as a tool with write
// access to the bucket could; it skips Encode's checks (f may break them).
func editManifest(t *testing.T, st objstore.Store, epoch int64, f func(*Manifest)) {
	t.Helper()
	m, err := DecodeManifest(get(t, st, ManifestKey(actorID, epoch)))
	if err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := jsonMarshal(m)
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, ManifestKey(actorID, epoch), b)
}

// Deleting an actor's archive removes all of it and nothing of another
// actor's; an actor created again under the same name has another id and
// finds no history.
func TestDeleteActor(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	buildTwoEpochs(t, st)
	other := "another-actor"
	w := mustClaim(t, st, other, 1)
	c := &actorChain{}
	cut := 0
	c.start("0")
	mustAppend(t, w, c.cut(&cut), c.state)
	before, err := st.List(ctx, actorPrefix(actorID))
	if err != nil || len(before) == 0 {
		t.Fatalf("listing: %v %v", before, err)
	}

	n, err := DeleteActor(ctx, st, actorID)
	if err != nil || n != len(before) {
		t.Fatalf("deleted %d of %d objects: %v", n, len(before), err)
	}
	if left, err := st.List(ctx, actorPrefix(actorID)); err != nil || len(left) != 0 {
		t.Fatalf("left behind: %v %v", left, err)
	}
	if _, err := Resolve(ctx, st, actorID); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("after the deletion: %v, want ErrNoHistory", err)
	}
	if _, err := Verify(ctx, st, other); err != nil {
		t.Fatalf("the other actor's archive: %v", err)
	}
	if _, err := DeleteActor(ctx, st, "../"+other); err == nil {
		t.Fatal("an id that escapes its directory was accepted")
	}
}

// RestoreThrough says whether the history holds a head the cluster knew:
// one inside a segment before the state's (downloaded for it), one at a
// segment's end, the history's own end, one past it, and one on a branch
// the history does not follow.
func TestRestoreThroughFindsAHead(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	w := mustClaim(t, st, actorID, 1)
	c := &actorChain{}
	cut := 0
	heads := map[uint64]chain.Hash{}
	c.start("0")
	heads[c.link.Length] = c.link.Head
	c.log("a")
	heads[c.link.Length] = c.link.Head
	c.log("b")
	mustAppend(t, w, c.cut(&cut), c.state)
	c.tick("1")
	heads[c.link.Length] = c.link.Head
	c.log("c")
	mustAppend(t, w, c.cut(&cut), c.state)
	end := c.link

	tests := map[string]struct {
		want      chain.Link
		holds     bool
		wantSegs  int
		wantState string
	}{
		"inside the first segment": {want: chain.Link{Length: 4, Head: heads[4]}, holds: true, wantSegs: 2},
		"the first event":          {want: chain.Link{Length: 3, Head: heads[3]}, holds: true, wantSegs: 2},
		"in the state's segment":   {want: chain.Link{Length: 6, Head: heads[6]}, holds: true, wantSegs: 1},
		"the history's end":        {want: end, holds: true, wantSegs: 1},
		"past the end":             {want: chain.Link{Length: end.Length + 1, Head: end.Head}, holds: false, wantSegs: 1},
		"on another branch":        {want: chain.Link{Length: 4, Head: chain.Hash{9}}, holds: false, wantSegs: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := RestoreThrough(ctx, st, actorID, &tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if r.Holds != tc.holds || r.Verified != tc.wantSegs || string(r.State) != "1" || r.Head != end.Head || r.Length != end.Length {
				t.Errorf("restored %+v (state %q), want holds %v after verifying %d segments", r, r.State, tc.holds, tc.wantSegs)
			}
		})
	}
	// A history that begins with a SegmentStart holds the head it continues.
	const moved = "6f0c8a44-2f57-4a8b-8f4e-1b2c3d4e5f60"
	origin := chain.Link{Length: 40, Head: chain.Hash{4}}
	w2 := mustClaim(t, st, moved, 1)
	c2 := continueFrom(origin, State{})
	cut2 := 0
	c2.tick("9")
	mustAppend(t, w2, c2.cut(&cut2), c2.state)
	if r, err := RestoreThrough(ctx, st, moved, &origin); err != nil || !r.Holds {
		t.Errorf("a history continuing %+v: holds %v, %v", origin, r != nil && r.Holds, err)
	}
	if r, err := RestoreThrough(ctx, st, moved, &chain.Link{Length: 40, Head: chain.Hash{5}}); err != nil || r.Holds {
		t.Errorf("a history continuing another head: holds %v, %v", r != nil && r.Holds, err)
	}
}
