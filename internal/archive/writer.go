package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// ErrFenced is returned to a writer whose epoch is no longer the actor's
// highest: a later epoch claimed it. Nothing the writer uploads from then
// on can become part of the history, whether it sees this error or not.
var ErrFenced = errors.New("a later epoch owns the actor's archive")

// ClaimOptions name the actor and the assignment that writes.
type ClaimOptions struct {
	ActorID string
	// Epoch is the assignment's status.epoch.
	Epoch int64
	// Host and Node are written into the manifest for people.
	Host, Node string
}

// State is the actor's state at a segment's end.
type State struct {
	HasState bool
	Data     []byte
}

// Writer uploads one epoch's segments. It is not safe for concurrent use:
// one host writes an epoch, one segment at a time.
type Writer struct {
	st  objstore.Store
	m   *Manifest
	tip *Segment // the last accepted segment: this epoch's last, or Base's
}

// Claim makes epoch the writer of the actor's archive and returns its
// Writer. A new epoch's manifest is written at once, before anything of
// the epoch is uploaded, with Base = the history's tip as Resolve gives it
// now: from that moment on, what an earlier epoch's host uploads is never
// part of the history. Claiming an epoch that already has a manifest (the
// same assignment's host started again) continues it. A claim by an epoch
// lower than one with a manifest fails with ErrFenced.
func Claim(ctx context.Context, st objstore.Store, o ClaimOptions) (*Writer, error) {
	if err := ValidActorID(o.ActorID); err != nil {
		return nil, err
	}
	if err := validEpoch(o.Epoch); err != nil {
		return nil, err
	}
	epochs, err := manifestEpochs(ctx, st, o.ActorID)
	if err != nil {
		return nil, err
	}
	w := &Writer{st: st}
	if n := len(epochs); n > 0 && epochs[n-1] > o.Epoch {
		return nil, fmt.Errorf("claiming %s for epoch %d: epoch %d has a manifest: %w", o.ActorID, o.Epoch, epochs[n-1], ErrFenced)
	}
	if n := len(epochs); n > 0 && epochs[n-1] == o.Epoch {
		if w.m, err = loadManifest(ctx, st, o.ActorID, o.Epoch); err != nil {
			return nil, fmt.Errorf("claiming %s for epoch %d again: %w", o.ActorID, o.Epoch, err)
		}
	} else {
		w.m = &Manifest{Format: ManifestFormat, ActorID: o.ActorID, Epoch: o.Epoch, Host: o.Host, Node: o.Node, Segments: []Segment{}}
		if len(epochs) > 0 {
			h, err := Resolve(ctx, st, o.ActorID)
			if err != nil {
				return nil, fmt.Errorf("claiming %s for epoch %d: %w", o.ActorID, o.Epoch, err)
			}
			if tip := h.Tip(); tip != nil {
				w.m.Base = &Base{Epoch: tip.Epoch, Segment: tip.Segment}
			}
		}
		if err := w.putManifest(ctx); err != nil {
			return nil, fmt.Errorf("claiming %s for epoch %d: %w", o.ActorID, o.Epoch, err)
		}
	}
	if k := len(w.m.Segments); k > 0 {
		w.tip = &w.m.Segments[k-1]
	} else if w.m.Base != nil {
		w.tip = &w.m.Base.Segment
	}
	return w, nil
}

// Tip returns where the next segment must start; ok false when the history
// holds no segment yet (the next one must begin a chain file: seq 0, or a
// SegmentStart).
func (w *Writer) Tip() (chain.Link, bool) {
	if w.tip == nil {
		return chain.Link{}, false
	}
	h, err := chain.ParseHash(w.tip.Head)
	if err != nil {
		// validate checked every head.
		panic(fmt.Sprintf("archive: manifest head %q: %v", w.tip.Head, err))
	}
	return chain.Link{Length: w.tip.Length, Head: h}, true
}

// Manifest returns a copy of the epoch's manifest as last written.
func (w *Writer) Manifest() Manifest {
	m := *w.m
	m.Segments = append([]Segment(nil), w.m.Segments...)
	return m
}

// Append uploads a sealed segment (records: the bytes of a chain file
// between two record boundaries, no header) and the state at its end, then
// the manifest naming them: objects first, manifest last, so a segment the
// manifest names is always whole, and a crash or error in between leaves
// only objects no manifest names. The segment must verify and continue the
// tip; state must be the one the chain records as of the segment's end.
// A state equal to the previous segment's is not uploaded again.
func (w *Writer) Append(ctx context.Context, records []byte, state State) (Segment, error) {
	id, epoch := w.m.ActorID, w.m.Epoch
	var prev *chain.Link
	if l, ok := w.Tip(); ok {
		prev = &l
	}
	tr := &stateTrack{}
	rep, err := chain.VerifySegment(bytes.NewReader(records), prev, tr.observe)
	if err != nil {
		return Segment{}, fmt.Errorf("archiving a segment of %s: %w", id, err)
	}
	if rep.Bytes > MaxSegmentBytes {
		return Segment{}, fmt.Errorf("archiving a segment of %s: %d bytes, more than %d", id, rep.Bytes, MaxSegmentBytes)
	}
	seg := Segment{First: rep.First, Length: rep.Length, Parent: rep.Parent.String(), Head: rep.Head.String(),
		Bytes: rep.Bytes, Sha256: hex.EncodeToString(rep.Sha256[:])}
	newState := false
	switch {
	case tr.found:
		seg.State = tr.ref()
		seg.State.Epoch, newState = epoch, true
		if seg.State.HasState && seg.State.Bytes < 0 {
			seg.State.Bytes = int64(len(state.Data))
		}
	case w.tip != nil:
		seg.State = w.tip.State
	}
	if err := checkState(&seg.State, state); err != nil {
		return Segment{}, fmt.Errorf("archiving a segment of %s (seqs %d-%d): %w", id, seg.First, seg.Length-1, err)
	}
	key := SegmentKey(id, epoch, &seg)
	if err := w.st.Put(ctx, key, bytes.NewReader(records), int64(len(records)), false); err != nil {
		return Segment{}, fmt.Errorf("archiving a segment of %s: %w", id, err)
	}
	if newState && seg.State.HasState {
		skey := StateKey(id, epoch, &seg.State)
		if err := w.st.Put(ctx, skey, bytes.NewReader(state.Data), int64(len(state.Data)), false); err != nil {
			return Segment{}, fmt.Errorf("archiving the state of %s at event %d: %w", id, *seg.State.Event, err)
		}
	}
	page, inline := w.m.Page, append(w.m.Segments[:len(w.m.Segments):len(w.m.Segments)], seg)
	if len(inline) >= pageSegments+inlineKeep {
		// The page first, the manifest naming it last: a crash in between
		// leaves a page no manifest names.
		ref, err := putPage(ctx, w.st, id, epoch, page, inline[:pageSegments])
		if err != nil {
			return Segment{}, fmt.Errorf("archiving a segment of %s: %w", id, err)
		}
		page, inline = &ref, append([]Segment(nil), inline[pageSegments:]...)
	}
	oldPage, oldInline := w.m.Page, w.m.Segments
	w.m.Page, w.m.Segments = page, inline
	if err := w.putManifest(ctx); err != nil {
		w.m.Page, w.m.Segments = oldPage, oldInline
		return Segment{}, fmt.Errorf("archiving a segment of %s: %w", id, err)
	}
	w.tip = &w.m.Segments[len(w.m.Segments)-1]
	return seg, nil
}

// checkState checks that s is the state ref describes.
func checkState(ref *StateRef, s State) error {
	if ref.HasState != s.HasState {
		return fmt.Errorf("the chain records hasState %v as of the segment's end, the state given has %v", ref.HasState, s.HasState)
	}
	if !s.HasState {
		return nil
	}
	sum := sha256.Sum256(s.Data)
	if got := hex.EncodeToString(sum[:]); got != ref.Sha256 || int64(len(s.Data)) != ref.Bytes {
		return fmt.Errorf("the chain records state %.12s (%d bytes) as of the segment's end, the state given is %.12s (%d bytes)",
			ref.Sha256, ref.Bytes, got, len(s.Data))
	}
	return nil
}

// putManifest writes the epoch's manifest unless a later epoch has one.
// The check is a guard that saves a stale host pointless writes, not what
// fences it: a manifest written after a later epoch's claim is ignored by
// every reader anyway (Resolve follows the highest epoch).
func (w *Writer) putManifest(ctx context.Context) error {
	epochs, err := manifestEpochs(ctx, w.st, w.m.ActorID)
	if err != nil {
		return err
	}
	if n := len(epochs); n > 0 && epochs[n-1] > w.m.Epoch {
		return fmt.Errorf("epoch %d has a manifest: %w", epochs[n-1], ErrFenced)
	}
	b, err := w.m.Encode()
	if err != nil {
		return err
	}
	if err := w.st.Put(ctx, ManifestKey(w.m.ActorID, w.m.Epoch), bytes.NewReader(b), int64(len(b)), false); err != nil {
		return fmt.Errorf("writing the manifest of epoch %d: %w", w.m.Epoch, err)
	}
	return nil
}
