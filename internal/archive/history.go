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
// each Base, oldest first.
type History struct {
	ActorID string
	// Top is the highest epoch with a manifest: the one whose account wins.
	Top *Manifest
	// Segments are the accepted segments, oldest first.
	Segments []Placed
	// Epochs are the epochs on the path, oldest first; Ignored those whose
	// manifest is not on it (a stale host's, or one whose writes a later
	// epoch did not accept), with what they listed beyond what was
	// accepted.
	Epochs  []int64
	Ignored []int64
}

// Tip returns the last accepted segment; nil when there is none.
func (h *History) Tip() *Placed {
	if len(h.Segments) == 0 {
		return nil
	}
	return &h.Segments[len(h.Segments)-1]
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
// downloading a segment: the highest epoch's manifest, then each Base's
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
	h := &History{ActorID: id, Top: top}
	var parts [][]Placed
	onPath := map[int64]bool{}
	for m, accepted := top, top.Segments; ; {
		part := make([]Placed, len(accepted))
		for i, s := range accepted {
			part[i] = Placed{Epoch: m.Epoch, Segment: s}
		}
		parts = append(parts, part)
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
		i := indexOf(prev.Segments, &base.Segment)
		if i < 0 {
			return nil, broken("epoch %d continues epoch %d's segment ending at seq %d (head %.12s), which epoch %d's manifest does not list",
				m.Epoch, base.Epoch, base.Segment.Length, base.Segment.Head, base.Epoch)
		}
		m, accepted = prev, prev.Segments[:i+1]
	}
	for i := len(parts) - 1; i >= 0; i-- {
		h.Segments = append(h.Segments, parts[i]...)
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
	rep := &Report{History: h}
	tr := &stateTrack{each: each}
	checked := map[string]bool{}
	var prev *chain.Link
	for i := range h.Segments {
		p := &h.Segments[i]
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
	b, err := st.Get(ctx, key, p.Bytes)
	switch {
	case errors.Is(err, objstore.ErrNotFound), errors.Is(err, objstore.ErrTooLarge):
		return chain.SegmentReport{}, broken("epoch %d's segment %s: %v", p.Epoch, key, err)
	case err != nil:
		return chain.SegmentReport{}, fmt.Errorf("epoch %d's segment: %w", p.Epoch, err)
	}
	if sum := sha256.Sum256(b); int64(len(b)) != p.Bytes || hex.EncodeToString(sum[:]) != p.Sha256 {
		return chain.SegmentReport{}, broken("segment %s: %d bytes with SHA-256 %x, the manifest says %d bytes with %s", key, len(b), sum, p.Bytes, p.Sha256)
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
	b, err := st.Get(ctx, key, ref.Bytes)
	switch {
	case errors.Is(err, objstore.ErrNotFound), errors.Is(err, objstore.ErrTooLarge):
		return nil, broken("state %s: %v", key, err)
	case err != nil:
		return nil, fmt.Errorf("state: %w", err)
	}
	if sum := sha256.Sum256(b); int64(len(b)) != ref.Bytes || hex.EncodeToString(sum[:]) != ref.Sha256 {
		return nil, broken("state %s: %d bytes with SHA-256 %x, the manifest says %d bytes with %s", key, len(b), sum, ref.Bytes, ref.Sha256)
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
