package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

var (
	// ErrNoHistory is returned for an actor the archive holds no manifest of.
	ErrNoHistory = errors.New("the archive holds no history of this actor")
	// ErrBroken wraps every reason a history does not verify: a manifest
	// that does not decode or does not follow its base, a missing or
	// damaged object, a broken link, a state that is not the one the chain
	// records. Errors without it are the store's (unreachable, refused).
	ErrBroken = errors.New("archived history does not verify")
)

func broken(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBroken, fmt.Sprintf(format, args...))
}

// Placed is a segment of the history with the epoch that uploaded it.
type Placed struct {
	Epoch int64
	Segment
}

// Key is the segment object's key.
func (p *Placed) Key(id string) string { return SegmentKey(id, p.Epoch, &p.Segment) }

// History is an actor's history as the manifests give it: the segments of
// every epoch on the path from the highest epoch's manifest back through
// each Base, oldest first. Resolve loads no page it does not need: the
// segments of an epoch's pages stay in the store until All (or a restore
// that reaches back into them) loads them.
type History struct {
	ActorID string
	// Top is the highest epoch with a manifest: the one whose account wins.
	Top *Manifest
	// Epochs are the epochs on the path, oldest first; Ignored those whose
	// manifest is not on it (a stale host's, or one whose writes a later
	// epoch did not accept), with what they listed beyond what was
	// accepted.
	Epochs  []int64
	Ignored []int64

	st objstore.Store
	// runs are the history's pieces, oldest first, each continuing the one
	// before: a page not loaded, or segments. The last one is segments
	// (Tip).
	runs  []run
	count int
}

// run is a piece of the history: the page page and every page of its
// epoch before it (not loaded), or segs.
type run struct {
	epoch int64
	page  *PageRef
	segs  []Segment
}

func (r *run) end() (uint64, string) {
	if r.page != nil {
		return r.page.Length, r.page.Head
	}
	s := &r.segs[len(r.segs)-1]
	return s.Length, s.Head
}

func (r *run) len() int {
	if r.page != nil {
		return int(r.page.Total)
	}
	return len(r.segs)
}

// Len is the number of segments in the history.
func (h *History) Len() int { return h.count }

// Tip returns the last accepted segment; nil when there is none.
func (h *History) Tip() *Placed {
	if len(h.runs) == 0 {
		return nil
	}
	r := &h.runs[len(h.runs)-1]
	return &Placed{Epoch: r.epoch, Segment: r.segs[len(r.segs)-1]}
}

// expand loads the newest page of the not loaded run i: runs[i] becomes
// the pages before it (when there are), then its segments. It returns the
// index of the segments.
func (h *History) expand(ctx context.Context, i int) (int, error) {
	r := h.runs[i]
	p, err := loadPage(ctx, h.st, h.ActorID, r.epoch, r.page)
	if err != nil {
		return 0, err
	}
	loaded := run{epoch: r.epoch, segs: p.Segments}
	if p.Prev == nil {
		h.runs[i] = loaded
		return i, nil
	}
	h.runs[i] = run{epoch: r.epoch, page: p.Prev}
	h.runs = append(h.runs[:i+1], append([]run{loaded}, h.runs[i+1:]...)...)
	return i + 1, nil
}

// All returns every segment of the history, oldest first, loading (and
// checking against its ref) every page not loaded yet, and checks that
// each segment continues the one before.
func (h *History) All(ctx context.Context) ([]Placed, error) {
	for i := 0; i < len(h.runs); {
		if h.runs[i].page == nil {
			i++
			continue
		}
		if _, err := h.expand(ctx, i); err != nil {
			return nil, err
		}
	}
	return h.flatten(0)
}

// flatten returns the segments of runs[i:], which are loaded, checking
// that each continues the one before.
func (h *History) flatten(i int) ([]Placed, error) {
	var out []Placed
	for ; i < len(h.runs); i++ {
		r := &h.runs[i]
		for _, s := range r.segs {
			if n := len(out); n > 0 && (s.First != out[n-1].Length || s.Parent != out[n-1].Head) {
				return nil, broken("epoch %d's segment %d-%d does not continue the one before it (epoch %d's, ending at %d)",
					r.epoch, s.First, s.Length-1, out[n-1].Epoch, out[n-1].Length)
			}
			out = append(out, Placed{Epoch: r.epoch, Segment: s})
		}
	}
	return out, nil
}

// since returns the segments from the one holding event seq (the first
// segment when seq is before the history) to the tip, and where the
// segment before them ends (nil when they begin the history), loading
// only the pages they lie in, newest first.
func (h *History) since(ctx context.Context, seq uint64) ([]Placed, *chain.Link, error) {
	i := len(h.runs) - 1
	for {
		if h.runs[i].page != nil {
			j, err := h.expand(ctx, i)
			if err != nil {
				return nil, nil, err
			}
			i = j
			continue
		}
		if h.runs[i].segs[0].First <= seq || i == 0 {
			break
		}
		i--
	}
	segs, err := h.flatten(i)
	if err != nil {
		return nil, nil, err
	}
	var prev *chain.Link
	if i > 0 {
		length, head := h.runs[i-1].end()
		hd, err := chain.ParseHash(head)
		if err != nil {
			return nil, nil, broken("epoch %d: head %q: %v", h.runs[i-1].epoch, head, err)
		}
		prev = &chain.Link{Length: length, Head: hd}
	}
	return cutAt(h.ActorID, segs, prev, seq)
}

// cutAt returns the segments of segs from the one holding event seq (the
// first when seq is before them), and where the segment before those ends
// (prev when it is segs' first).
func cutAt(id string, segs []Placed, prev *chain.Link, seq uint64) ([]Placed, *chain.Link, error) {
	j := len(segs) - 1
	for j > 0 && segs[j].First > seq {
		j--
	}
	if j > 0 {
		p := &segs[j-1]
		hd, err := chain.ParseHash(p.Head)
		if err != nil {
			return nil, nil, broken("segment %s: head: %v", p.Key(id), err)
		}
		prev = &chain.Link{Length: p.Length, Head: hd}
	}
	return segs[j:], prev, nil
}

// manifestEpochs lists the epochs that have a manifest, ascending.
func manifestEpochs(ctx context.Context, st objstore.Store, id string) ([]int64, error) {
	keys, err := st.List(ctx, manifestsPrefix(id))
	if err != nil {
		return nil, fmt.Errorf("listing the archive of %s: %w", id, err)
	}
	var out []int64
	for _, k := range keys {
		if e, ok := parseManifestKey(id, k); ok {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// loadManifest reads and checks epoch's manifest.
func loadManifest(ctx context.Context, st objstore.Store, id string, epoch int64) (*Manifest, error) {
	key := ManifestKey(id, epoch)
	b, err := st.Get(ctx, key, MaxManifestBytes)
	switch {
	case errors.Is(err, objstore.ErrNotFound), errors.Is(err, objstore.ErrTooLarge):
		return nil, broken("%s: %v", key, err)
	case err != nil:
		return nil, err
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, broken("%s: %v", key, err)
	}
	if m.ActorID != id || m.Epoch != epoch {
		return nil, broken("%s holds the manifest of actor %s, epoch %d", key, m.ActorID, m.Epoch)
	}
	return m, nil
}

// Resolve reads the history's account from the manifests, without
// downloading a segment (nor a page, except those of an earlier epoch it
// walks back through to find the segment a Base names): the highest epoch's manifest, then each Base's
// epoch, taking from each earlier manifest the segments up to and
// including the one Base names. What an epoch's manifest lists after that
// point (a host's uploads after it lost the assignment) is not part of the
// history.
func Resolve(ctx context.Context, st objstore.Store, id string) (*History, error) {
	if err := ValidActorID(id); err != nil {
		return nil, err
	}
	epochs, err := manifestEpochs(ctx, st, id)
	if err != nil {
		return nil, err
	}
	if len(epochs) == 0 {
		return nil, fmt.Errorf("%s: %w", id, ErrNoHistory)
	}
	top, err := loadManifest(ctx, st, id, epochs[len(epochs)-1])
	if err != nil {
		return nil, err
	}
	h := &History{ActorID: id, Top: top, st: st}
	var parts [][]run
	onPath := map[int64]bool{}
	for m, accepted := top, epochRuns(top); ; {
		parts = append(parts, accepted)
		onPath[m.Epoch] = true
		h.Epochs = append(h.Epochs, m.Epoch)
		if m.Base == nil {
			break
		}
		base := m.Base
		prev, err := loadManifest(ctx, st, id, base.Epoch)
		if err != nil {
			return nil, fmt.Errorf("epoch %d's base: %w", m.Epoch, err)
		}
		if accepted, err = acceptedRuns(ctx, st, prev, &base.Segment); err != nil {
			return nil, fmt.Errorf("epoch %d's base: %w", m.Epoch, err)
		}
		if accepted == nil {
			return nil, broken("epoch %d continues epoch %d's segment ending at seq %d (head %.12s), which epoch %d's manifest does not list",
				m.Epoch, base.Epoch, base.Segment.Length, base.Segment.Head, base.Epoch)
		}
		m = prev
	}
	for i := len(parts) - 1; i >= 0; i-- {
		for _, r := range parts[i] {
			h.runs = append(h.runs, r)
			h.count += r.len()
		}
	}
	for i, j := 0, len(h.Epochs)-1; i < j; i, j = i+1, j-1 {
		h.Epochs[i], h.Epochs[j] = h.Epochs[j], h.Epochs[i]
	}
	for _, e := range epochs {
		if !onPath[e] {
			h.Ignored = append(h.Ignored, e)
		}
	}
	return h, nil
}

// epochRuns is all of m's account: its pages, then its inline segments.
func epochRuns(m *Manifest) []run {
	var out []run
	if m.Page != nil {
		out = append(out, run{epoch: m.Epoch, page: m.Page})
	}
	if len(m.Segments) > 0 {
		out = append(out, run{epoch: m.Epoch, segs: m.Segments})
	}
	return out
}

// acceptedRuns is m's account up to and including s, which it must list
// identically (nil when it does not): from the inline segments, or from
// the page holding s's first seq, found by walking back from m's newest
// page (a later epoch accepts the tip an earlier one had at its claim,
// so this is most often the inline list or the newest page).
func acceptedRuns(ctx context.Context, st objstore.Store, m *Manifest, s *Segment) ([]run, error) {
	if j := indexOf(m.Segments, s); j >= 0 {
		out := epochRuns(m)
		out[len(out)-1].segs = m.Segments[:j+1]
		return out, nil
	}
	for r := m.Page; r != nil && s.First < r.Length; {
		p, err := loadPage(ctx, st, m.ActorID, m.Epoch, r)
		if err != nil {
			return nil, err
		}
		if s.First >= r.First {
			j := indexOf(p.Segments, s)
			if j < 0 {
				return nil, nil
			}
			var out []run
			if p.Prev != nil {
				out = append(out, run{epoch: m.Epoch, page: p.Prev})
			}
			return append(out, run{epoch: m.Epoch, segs: p.Segments[:j+1]}), nil
		}
		r = p.Prev
	}
	return nil, nil
}

func indexOf(segs []Segment, s *Segment) int {
	for i := range segs {
		if reflect.DeepEqual(segs[i], *s) {
			return i
		}
	}
	return -1
}

// Report is what Verify checked.
type Report struct {
	History *History
	// Events is the number of events in the history, Head and Length its
	// end (what the Actor's status should say once everything is archived).
	Events uint64
	Head   chain.Hash
	Length uint64
	// Origin is the first event: seq 0 (the actor's first event) or a
	// SegmentStart continuing a head the archive does not hold.
	Origin chain.Link
	// OriginKind is the first event's kind.
	OriginKind chain.Kind
	// States is the number of distinct state objects checked.
	States int
	// Segments is the number of segments checked.
	Segments int
}

// Verify downloads and checks every segment of the history and every
// state object it names: each object's size and SHA-256 against its
// manifest, every record's framing, hash and link (the first of each
// segment to the end of the one before, across epochs), each segment's
// first and last seq, parent and head against its manifest, and that each
// segment's state is the one the chain's last state-recording event before
// its end records. The first problem ends it with an ErrBroken error.
func Verify(ctx context.Context, st objstore.Store, id string) (*Report, error) {
	return VerifyEach(ctx, st, id, nil)
}

// VerifyEach is Verify, calling each (when not nil) with every event of
// the history, oldest first, once its record's hash and link are checked
// and the segment object holding it matched its manifest entry (what
// `troupe chain show` prints). An error from each ends it, returned as
// it is.
func VerifyEach(ctx context.Context, st objstore.Store, id string, each func(chain.Event) error) (*Report, error) {
	h, err := Resolve(ctx, st, id)
	if err != nil {
		return nil, err
	}
	segs, err := h.All(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{History: h, Segments: len(segs)}
	tr := &stateTrack{each: each}
	checked := map[string]bool{}
	var prev *chain.Link
	for i := range segs {
		p := &segs[i]
		srep, err := fetchSegment(ctx, st, id, p, prev, tr)
		if tr.eachErr != nil {
			return nil, tr.eachErr
		}
		if err != nil {
			return nil, err
		}
		if i == 0 {
			rep.Origin, rep.OriginKind = chain.Link{Length: srep.First, Head: srep.Parent}, srep.FirstKind
		}
		if err := tr.check(p); err != nil {
			return nil, err
		}
		if key := StateKey(id, p.State.Epoch, &p.State); key != "" && !checked[key] {
			if _, err := fetchState(ctx, st, key, &p.State); err != nil {
				return nil, err
			}
			checked[key] = true
		}
		rep.Events += srep.Events
		end := srep.End()
		prev = &end
	}
	if prev != nil {
		rep.Head, rep.Length = prev.Head, prev.Length
	}
	rep.States = len(checked)
	return rep, nil
}

// fetchSegment downloads p and checks it against its manifest entry and
// prev (nil: it begins the history); tr sees its events.
func fetchSegment(ctx context.Context, st objstore.Store, id string, p *Placed, prev *chain.Link, tr *stateTrack) (chain.SegmentReport, error) {
	key := p.Key(id)
	b, err := getChecked(ctx, st, fmt.Sprintf("epoch %d's segment", p.Epoch), key, p.Bytes, p.Sha256)
	if err != nil {
		return chain.SegmentReport{}, err
	}
	rep, err := chain.VerifySegment(bytes.NewReader(b), prev, tr.observe)
	if err != nil {
		return rep, broken("segment %s: %v", key, err)
	}
	if rep.First != p.First || rep.Length != p.Length || rep.Parent.String() != p.Parent || rep.Head.String() != p.Head {
		return rep, broken("segment %s holds seqs %d-%d (parent %s, head %s), the manifest says %d-%d (parent %.12s, head %.12s)",
			key, rep.First, rep.Length-1, rep.Parent.Short(), rep.Head.Short(), p.First, p.Length-1, p.Parent, p.Head)
	}
	return rep, nil
}

// fetchState downloads a state object and checks it against ref.
func fetchState(ctx context.Context, st objstore.Store, key string, ref *StateRef) ([]byte, error) {
	return getChecked(ctx, st, "state", key, ref.Bytes, ref.Sha256)
}

// getChecked downloads key (what names it in errors) and checks it has
// size bytes with SHA-256 sha: a missing, larger or different object is
// ErrBroken; the store's own failures are not.
func getChecked(ctx context.Context, st objstore.Store, what, key string, size int64, sha string) ([]byte, error) {
	b, err := st.Get(ctx, key, size)
	switch {
	case errors.Is(err, objstore.ErrNotFound), errors.Is(err, objstore.ErrTooLarge):
		return nil, broken("%s %s: %v", what, key, err)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if sum := sha256.Sum256(b); int64(len(b)) != size || hex.EncodeToString(sum[:]) != sha {
		return nil, broken("%s %s: %d bytes with SHA-256 %x, the manifest says %d bytes with %s", what, key, len(b), sum, size, sha)
	}
	return b, nil
}

// stateTrack follows the last state-recording event of the events it sees.
type stateTrack struct {
	found bool
	seq   uint64
	rec   chain.StateRecord
	// want, when set, is a head to look for; holds says it was seen.
	want  *chain.Link
	holds bool
	// each, when set, sees every event too; eachErr is its error.
	each    func(chain.Event) error
	eachErr error
}

func (t *stateTrack) observe(e chain.Event) error {
	if t.each != nil {
		if t.eachErr = t.each(e); t.eachErr != nil {
			return t.eachErr
		}
	}
	if t.want != nil && e.Seq == t.want.Length-1 {
		t.holds = e.Hash == t.want.Head
	}
	rec, ok, err := chain.RecordedState(&e)
	if err != nil {
		return err
	}
	if ok {
		t.found, t.seq, t.rec = true, e.Seq, rec
	}
	return nil
}

// ref is the StateRef the events seen so far give (without Epoch).
func (t *stateTrack) ref() StateRef {
	if !t.found {
		return StateRef{}
	}
	seq := t.seq
	r := StateRef{Event: &seq, HasState: t.rec.HasState}
	if r.HasState {
		r.Sha256, r.Bytes = t.rec.Sha256, t.rec.Bytes
	}
	return r
}

// check compares p's state with the one the chain records as of p's end.
func (t *stateTrack) check(p *Placed) error {
	want, got := t.ref(), p.State
	same := (want.Event == nil) == (got.Event == nil) && (want.Event == nil || *want.Event == *got.Event) &&
		want.HasState == got.HasState && want.Sha256 == got.Sha256 &&
		(want.Bytes == got.Bytes || want.Bytes < 0) // v0.1.0 ticks give no size
	if !same {
		return broken("epoch %d's segment %d-%d names the state %s, but the chain records %s as of its end",
			p.Epoch, p.First, p.Length-1, describeState(&got), describeState(&want))
	}
	return nil
}

func describeState(r *StateRef) string {
	switch {
	case r.Event == nil:
		return "none (no event records a state)"
	case !r.HasState:
		return fmt.Sprintf("no state (event %d)", *r.Event)
	default:
		return fmt.Sprintf("%.12s (%d bytes, event %d)", r.Sha256, r.Bytes, *r.Event)
	}
}
