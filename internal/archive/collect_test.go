package archive

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/objstore"
)

// appendWithoutManifest uploads seg through w while st fails every
// manifest write: its objects are left in the store, named by nothing.
func appendWithoutManifest(t *testing.T, st *failingStore, w *Writer, seg []byte, s State) {
	t.Helper()
	manifests := "/manifests/"
	st.failSuffix.Store(&manifests)
	defer st.failSuffix.Store(nil)
	if _, err := w.Append(testCtx(t), seg, s); err == nil {
		t.Fatal("an append whose manifest write failed succeeded")
	}
}

// orphanClock is a collector's clock the test moves past the grace.
type orphanClock struct{ shift atomic.Int64 }

func (c *orphanClock) now() time.Time { return time.Now().Add(time.Duration(c.shift.Load())) }

// namedKeys is every key the store must keep for ids: manifests, and every
// segment, state and page that any manifest, or the pages they reach,
// names (walked independently of the collector, through the reader).
func namedKeys(t *testing.T, st objstore.Store, ids ...string) map[string]bool {
	t.Helper()
	ctx := testCtx(t)
	out := map[string]bool{}
	for _, id := range ids {
		epochs, err := manifestEpochs(ctx, st, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range epochs {
			out[ManifestKey(id, e)] = true
			m, err := loadManifest(ctx, st, id, e)
			if err != nil {
				t.Fatal(err)
			}
			name := func(ep int64, s *Segment) {
				out[SegmentKey(id, ep, s)] = true
				if k := StateKey(id, s.State.Epoch, &s.State); k != "" {
					out[k] = true
				}
			}
			for i := range m.Segments {
				name(e, &m.Segments[i])
			}
			if m.Base != nil {
				name(m.Base.Epoch, &m.Base.Segment)
			}
			for r := m.Page; r != nil; {
				out[PageKey(id, e, r)] = true
				p, err := loadPage(ctx, st, id, e, r)
				if err != nil {
					t.Fatal(err)
				}
				for i := range p.Segments {
					name(e, &p.Segments[i])
				}
				r = p.Prev
			}
		}
	}
	return out
}

// storeKeys lists every key under the archive.
func storeKeys(t *testing.T, st objstore.Store) map[string]bool {
	t.Helper()
	keys, err := st.List(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range keys {
		out[k] = true
	}
	return out
}

// collectAll runs passes until one wraps, and returns what they removed.
func collectAll(t *testing.T, c *Collector) []string {
	t.Helper()
	var removed []string
	for range 10000 {
		res, err := c.Pass(testCtx(t))
		if err != nil {
			t.Fatalf("pass %+v: %v", res, err)
		}
		removed = append(removed, res.Removed...)
		if res.Wrapped {
			return removed
		}
	}
	t.Fatal("the passes never reached the archive's end")
	return nil
}

// Every kind of orphan goes once it is older than the grace: a crash
// between the objects and the manifest, a page whose manifest write never
// came, a stale epoch's uploads after a later claim, and an upload racing
// the deletion of the archive; the live objects, manifests, name index
// entries and tombstones never do, and the history verifies after the
// passes as before.
func TestCollectorRemovesOrphansOnly(t *testing.T) {
	_, s3 := newStore(t)
	st := &failingStore{Store: s3}
	ctx := testCtx(t)
	setPaging(t, 4, 1)

	// a: a crash between a segment's objects and its manifest (twice),
	// then a page written whose manifest write failed before the actor
	// moved to epoch 2; epoch 1 goes on uploading after the move (fenced:
	// never named), and one write slips past the guard into epoch 1's
	// manifest (named by a manifest: kept).
	a := actorID // forceAppend's guard-free store knows this id
	w1, err := Claim(ctx, st, ClaimOptions{ActorID: a, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := &actorChain{}
	cut := 0
	c.start("0")
	mustAppend(t, w1, c.cut(&cut), c.state)
	for i := range 3 {
		mark := cut
		c.tick("t" + string(rune('a'+i)))
		appendWithoutManifest(t, st, w1, c.cut(&cut), c.state)
		c.tick("again") // the next upload seals more, with a later state: other keys
		cut = mark
		mustAppend(t, w1, c.cut(&cut), c.state)
	}
	// Inline: 4 segments; the next one pages the oldest 4: fail its manifest.
	mark := cut
	c.tick("paged")
	appendWithoutManifest(t, st, w1, c.cut(&cut), c.state)
	if ks, _ := s3.List(ctx, epochPrefix(a, 1)+"pages/"); len(ks) != 1 {
		t.Fatalf("want the unnamed page in the store, have %v", ks)
	}
	w2 := mustClaim(t, st, a, 2)
	cut = mark
	c.tick("stale")
	if _, err := w1.Append(ctx, c.cut(&cut), c.state); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale append: %v, want ErrFenced", err)
	}
	staleW := &Writer{st: st, m: new(Manifest)}
	*staleW.m = w1.Manifest()
	staleW.tip = &staleW.m.Segments[len(staleW.m.Segments)-1]
	c.tick("slipped")
	cut = mark
	forceAppend(t, staleW, c.cut(&cut), c.state)
	tip, _ := w2.Tip()
	c2 := continueFrom(tip, State{HasState: true, Data: []byte("t")})
	cut2 := 0
	for i := range 9 { // epoch 2 pages twice: its pages stay named
		c2.tick("e2-" + string(rune('a'+i)))
		mustAppend(t, w2, c2.cut(&cut2), c2.state)
	}

	// b: an upload racing the deletion of its archive: the writer's
	// objects land after DeleteActor and its manifest write fails.
	const b = "actor-b"
	wb := mustClaim(t, st, b, 1)
	cb := &actorChain{}
	cutb := 0
	cb.start("0")
	mustAppend(t, wb, cb.cut(&cutb), cb.state)
	if err := PutIndex(ctx, st, IndexEntry{Namespace: "ns", Name: "b", ActorID: b, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := PutTombstone(ctx, st, Tombstone{ActorID: b, Namespace: "ns", Name: "b", DeletedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := DeleteActor(ctx, st, b); err != nil {
		t.Fatal(err)
	}
	cb.tick("late")
	appendWithoutManifest(t, st, wb, cb.cut(&cutb), cb.state)

	// c: a page written, then its manifest write failed, and the actor
	// moved before its host wrote it again.
	const cID = "actor-c"
	wc := mustClaim(t, st, cID, 1)
	cc := &actorChain{}
	cutc := 0
	cc.start("0")
	for i := range 4 {
		mustAppend(t, wc, cc.cut(&cutc), cc.state)
		cc.tick(string(rune('a' + i)))
	}
	appendWithoutManifest(t, st, wc, cc.cut(&cutc), cc.state)
	mustClaim(t, st, cID, 2)

	before := storeKeys(t, s3)
	named := namedKeys(t, s3, a, b, cID)
	var orphans []string
	for k := range before {
		if !named[k] && strings.HasPrefix(k, actorsDir) {
			orphans = append(orphans, k)
		}
	}
	slices.Sort(orphans)
	// a's 3 crashed uploads, its paging one (whose page the slipped write
	// named) and its fenced one, b's raced one, c's paging one (a segment
	// and a state each), and c's page.
	kinds := map[string]int{}
	for _, k := range orphans {
		kinds[k[strings.LastIndex(k, "."):]]++
	}
	if want := map[string]int{".seg": 7, ".state": 7, ".json": 1}; !maps.Equal(kinds, want) {
		t.Fatalf("the scenario left orphans %v (%v), want %v", orphans, kinds, want)
	}

	clock := &orphanClock{}
	col, err := NewCollector(st, CollectOptions{Grace: time.Hour, KeysPerPass: 7, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if removed := collectAll(t, col); len(removed) != 0 {
		t.Fatalf("removed %v within the grace", removed)
	}
	clock.shift.Store(int64(2 * time.Hour))
	removed := collectAll(t, col)
	slices.Sort(removed)
	if !slices.Equal(removed, orphans) {
		t.Fatalf("removed %v, want the orphans %v", removed, orphans)
	}
	after := storeKeys(t, s3)
	for k := range before {
		if !after[k] && !slices.Contains(orphans, k) {
			t.Errorf("%s was removed", k)
		}
	}
	for k := range after {
		if !before[k] {
			t.Errorf("%s appeared", k)
		}
	}
	if !after[IndexKey("ns", "b", b)] || !after[TombstoneKey(b)] {
		t.Error("an index entry or a tombstone was removed")
	}
	for _, id := range []string{a, cID} {
		if _, err := Verify(ctx, s3, id); err != nil {
			t.Fatalf("after the passes: %v", err)
		}
	}
	if removed := collectAll(t, col); len(removed) != 0 {
		t.Fatalf("a second round removed %v", removed)
	}
}

// A pass that cannot read what decides an object keeps it: a page that
// does not decode keeps every object it might name.
func TestCollectorKeepsWhatItCannotDecide(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	setPaging(t, 2, 1)
	w := mustClaim(t, st, actorID, 1)
	c := &actorChain{}
	cut := 0
	c.start("0")
	for i := range 4 {
		mustAppend(t, w, c.cut(&cut), c.state)
		c.tick(string(rune('a' + i)))
	}
	m := w.Manifest()
	key := PageKey(actorID, 1, m.Page)
	if err := st.Put(ctx, key, strings.NewReader("{}"), 2, false); err != nil {
		t.Fatal(err)
	}
	before := storeKeys(t, st)
	col, err := NewCollector(st, CollectOptions{Grace: time.Millisecond, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := col.Pass(ctx)
	if err == nil || !strings.Contains(err.Error(), key) || res.Undecided == 0 || res.Collected != 0 {
		t.Fatalf("pass over a damaged page: %+v %v", res, err)
	}
	if after := storeKeys(t, st); !maps.Equal(before, after) {
		t.Fatalf("keys before %v, after %v", before, after)
	}
}

// A host that uploads while passes run loses nothing: with a grace longer
// than an upload, no object a manifest names (or comes to name) is
// removed, whatever the pass's boundaries; and the orphans its failed
// uploads leave go once they are older than the grace.
func TestCollectorBesideAnUploadingHost(t *testing.T) {
	_, s3 := newStore(t)
	st := &failingStore{Store: s3}
	ctx := testCtx(t)
	setPaging(t, 4, 2)
	const grace = 3 * time.Second
	col, err := NewCollector(s3, CollectOptions{Grace: grace, KeysPerPass: 5})
	if err != nil {
		t.Fatal(err)
	}
	w := mustClaim(t, st, actorID, 1)
	c := &actorChain{}
	cut := 0
	c.start("0")
	mustAppend(t, w, c.cut(&cut), c.state)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var collected atomic.Int64
	var passErr atomic.Pointer[error]
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := col.Pass(ctx)
			if err != nil {
				passErr.Store(&err)
				return
			}
			collected.Add(int64(res.Collected))
		}
	}()
	deadline := time.Now().Add(2*grace + time.Second)
	for i := 0; time.Now().Before(deadline) || collected.Load() == 0; i++ {
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatal("no orphan was collected in a minute past the grace")
		}
		mark := cut
		c.tick(string(rune('a' + i%26)))
		if i%5 == 4 {
			appendWithoutManifest(t, st, w, c.cut(&cut), c.state)
			c.tick("again")
			cut = mark
		}
		if _, err := w.Append(ctx, c.cut(&cut), c.state); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(ctx, s3, actorID); err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	if p := passErr.Load(); p != nil {
		t.Fatal(*p)
	}
	// Past the grace, every orphan goes and every named object stays.
	late, err := NewCollector(s3, CollectOptions{Grace: time.Hour, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	collectAll(t, late)
	if got, want := storeKeys(t, s3), namedKeys(t, s3, actorID); !maps.Equal(got, want) {
		t.Fatalf("after the passes the store holds %v, the manifests name %v", got, want)
	}
	if _, err := Verify(ctx, s3, actorID); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orphans collected while the host uploaded", collected.Load())
}

// Only the keys the layout gives an epoch's segments, states and pages are
// candidates: anything else under actors/ (manifests, keys of another
// build) is never collected.
func TestParseObjectKey(t *testing.T) {
	const e1 = "actors/a-1/epochs/00000000000000000001/"
	n := func(i int) string { return pad(uint64(i)) }
	tests := map[string]struct {
		key  string
		want *objectKey
	}{
		"segment":                {e1 + "segments/" + n(3) + "-" + n(7) + "-0123456789abcdef.seg", &objectKey{actor: "a-1", epoch: 1, kind: "segments", first: 3, length: 7}},
		"state":                  {e1 + "states/" + n(6) + "-0123456789abcdef.state", &objectKey{actor: "a-1", epoch: 1, kind: "states", first: 6}},
		"page":                   {e1 + "pages/" + n(0) + "-" + n(900) + "-0123456789abcdef.json", &objectKey{actor: "a-1", epoch: 1, kind: "pages", first: 0, length: 900}},
		"manifest":               {"actors/a-1/manifests/" + n(1) + ".json", nil},
		"tombstone":              {"deleted/a-1.json", nil},
		"index entry":            {"names/ns/n/a-1.json", nil},
		"unknown directory":      {e1 + "blobs/" + n(3) + "-0123456789abcdef.bin", nil},
		"empty range":            {e1 + "segments/" + n(7) + "-" + n(7) + "-0123456789abcdef.seg", nil},
		"unpadded number":        {e1 + "segments/3-" + n(7) + "-0123456789abcdef.seg", nil},
		"upper-case hash":        {e1 + "segments/" + n(3) + "-" + n(7) + "-0123456789ABCDEF.seg", nil},
		"short hash":             {e1 + "states/" + n(6) + "-0123.state", nil},
		"wrong extension":        {e1 + "states/" + n(6) + "-0123456789abcdef.json", nil},
		"deeper":                 {e1 + "segments/x/" + n(3) + "-" + n(7) + "-0123456789abcdef.seg", nil},
		"epoch past int64":       {"actors/a-1/epochs/" + "99999999999999999999" + "/states/" + n(6) + "-0123456789abcdef.state", nil},
		"actor id not an id":     {"actors/A_1/epochs/" + n(1) + "/states/" + n(6) + "-0123456789abcdef.state", nil},
		"not under epochs":       {"actors/a-1/other/" + n(1) + "/states/" + n(6) + "-0123456789abcdef.state", nil},
		"length before first":    {e1 + "pages/" + n(9) + "-" + n(2) + "-0123456789abcdef.json", nil},
		"a segment key as state": {e1 + "states/" + n(3) + "-" + n(7) + "-0123456789abcdef.state", nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := parseObjectKey(tc.key)
			if tc.want == nil {
				if ok {
					t.Fatalf("%s parsed as %+v", tc.key, got)
				}
				return
			}
			tc.want.key = tc.key
			if !ok || got != *tc.want {
				t.Fatalf("%s: %+v %v, want %+v", tc.key, got, ok, *tc.want)
			}
		})
	}
}

// getsFailing fails every Get of a key holding part.
type getsFailing struct {
	objstore.Store
	part string
}

func (g getsFailing) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	if strings.Contains(key, g.part) {
		return nil, errors.New("injected failure")
	}
	return g.Store.Get(ctx, key, max)
}

// A store that fails the pass's reads, or a pass out of time, keeps every
// candidate, and says so in one bounded error.
func TestCollectorPassThatCannotRead(t *testing.T) {
	setPaging(t, 2, 1)
	mem := newMemStore()
	w := mustClaim(t, mem, actorID, 1)
	c := &actorChain{}
	cut := 0
	c.start("0")
	for i := range 30 {
		mustAppend(t, w, c.cut(&cut), c.state)
		c.tick(string(rune('a' + i)))
	}
	before := len(mem.objs)
	old := func() time.Time { return time.Now().Add(time.Hour) } // memStore's objects have the zero time
	tests := map[string]struct {
		st     objstore.Store
		cancel bool
		want   string
		// some: the manifest decides some candidates (it names them).
		some bool
	}{
		"pages unreadable":    {st: getsFailing{mem, "/pages/"}, want: " more errors", some: true},
		"manifest unreadable": {st: getsFailing{mem, "/manifests/"}, want: "injected failure"},
		"out of time":         {st: mem, cancel: true, want: "candidates not looked at: context canceled"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			col, err := NewCollector(tc.st, CollectOptions{Grace: time.Minute, Now: old})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(testCtx(t))
			if tc.cancel {
				cancel()
			}
			defer cancel()
			res, err := col.Pass(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") > 6 {
				t.Fatalf("error %v, want one naming %q in at most 6 lines", err, tc.want)
			}
			if res.Collected != 0 || res.Undecided == 0 || res.Undecided != res.Candidates && !tc.some || len(mem.objs) != before {
				t.Fatalf("%+v; %d objects of %d left", res, len(mem.objs), before)
			}
		})
	}
}

// An object PUT again between the pass's listing and its DELETE (a
// writer retrying the upload that names it) is young again, and stays:
// remove looks at the object's time once more right before the DELETE.
func TestCollectorKeepsAnObjectPutAgain(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	key := epochPrefix(actorID, 1) + "segments/" + pad(0) + "-" + pad(1) + "-0123456789abcdef.seg"
	put := func() time.Time {
		t.Helper()
		if err := st.Put(ctx, key, strings.NewReader("seg"), 3, false); err != nil {
			t.Fatal(err)
		}
		got, err := st.Scan(ctx, key, "", 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("scan %s: %v %v", key, got, err)
		}
		return got[0].Modified
	}
	first := put()
	// The store's times have a second's resolution: PUT again until the
	// time moves.
	again := put()
	for deadline := time.Now().Add(time.Minute); !again.After(first); again = put() {
		if time.Now().After(deadline) {
			t.Fatalf("the store's time of %s stayed %s", key, first)
		}
		time.Sleep(100 * time.Millisecond)
	}
	col, err := NewCollector(st, CollectOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The listing saw it at its first time (older than the cutoff): the
	// second PUT is not, and it stays.
	if removed, err := col.remove(ctx, key, again); err != nil || removed {
		t.Fatalf("an object PUT again after the cutoff: removed %v, %v", removed, err)
	}
	if removed, err := col.remove(ctx, key, again.Add(time.Second)); err != nil || !removed {
		t.Fatalf("an object older than the cutoff: removed %v, %v", removed, err)
	}
	if _, err := st.Get(ctx, key, 10); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("after its removal: %v", err)
	}
}
