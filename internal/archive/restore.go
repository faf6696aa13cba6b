package archive

import (
	"context"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// Restored is what a new host continues from after a move.
type Restored struct {
	// Epoch is the epoch whose segment ends the history (the tip).
	Epoch int64
	// Head and Length are the history's end: the new host's SegmentStart
	// continues them. Both zero when the archive holds no segment yet.
	Head   chain.Hash
	Length uint64
	// StateEvent is the seq of the event that recorded State; nil when no
	// event records a state (the actor never got one: init it afresh).
	StateEvent *uint64
	HasState   bool
	State      []byte
	// StateSha256 is the digest (hex) the chain records for State at
	// StateEvent, which State was checked against.
	StateSha256 string
	// Verified is how many segments were downloaded and checked.
	Verified int
	// Holds, for RestoreThrough, says whether the history holds the head
	// asked about: its event at that length - 1 has that hash (or the
	// history begins right after it).
	Holds bool
}

// Restore returns the latest state and the history's end, checked: the
// manifests' account (Resolve); the segments from the one holding the
// event that records the state to the tip, each downloaded and verified
// against its manifest entry and linked to the segment before it; that
// event is the last state-recording one of the history and its digest is
// the state object's SHA-256. Earlier segments are not downloaded (Verify
// checks them all): they are tied to these by the manifests' parent and
// head hashes, and the state needs none of them.
func Restore(ctx context.Context, st objstore.Store, id string) (*Restored, error) {
	return RestoreThrough(ctx, st, id, nil)
}

// RestoreThrough is Restore that also says whether the history holds want
// (the head the cluster last knew, from the Actor's status): Holds is
// true when the event at want.Length - 1 is in the history with hash
// want.Head. When that event lies before the state's segment, the
// segments from its own on are downloaded and verified too. A want past
// the history's end is not held.
func RestoreThrough(ctx context.Context, st objstore.Store, id string, want *chain.Link) (*Restored, error) {
	h, err := Resolve(ctx, st, id)
	if err != nil {
		return nil, err
	}
	tip := h.Tip()
	if tip == nil {
		return &Restored{Epoch: h.Top.Epoch}, nil
	}
	// The first segment to download: the one holding the state's event,
	// or the tip alone when no event records a state; and the one
	// holding want's event, if earlier. Only the pages from there on are
	// loaded: none when those segments are inline in the top manifest.
	stateFrom := tip.First
	if ev := tip.State.Event; ev != nil {
		stateFrom = min(stateFrom, *ev)
	}
	from := stateFrom
	asked := want != nil && want.Length > 0 && want.Length <= tip.Length
	if asked {
		from = min(from, want.Length-1)
	}
	segs, prev, err := h.since(ctx, from)
	if err != nil {
		return nil, err
	}
	tr := &stateTrack{}
	if asked {
		// since stops at the segment holding want's event, or at the
		// history's first segment (prev nil) when that event is before it.
		if first := &segs[0]; prev == nil && want.Length <= first.First {
			// The history begins with a SegmentStart continuing want, or
			// at another head of the same length, or after it: want's
			// event is not in it, and the segments before the state's
			// need not be read.
			tr.holds = want.Length == first.First && first.Parent == want.Head.String()
			if segs, prev, err = cutAt(id, segs, prev, stateFrom); err != nil {
				return nil, err
			}
		} else {
			tr.want = want
		}
	}
	var srep chain.SegmentReport
	for i := range segs {
		if srep, err = fetchSegment(ctx, st, id, &segs[i], prev, tr); err != nil {
			return nil, err
		}
		end := srep.End()
		prev = &end
	}
	// tr saw every event from the state's segment on, so its last state
	// is the history's: unless no event records one, and then tr saw none.
	if err := tr.check(tip); err != nil {
		return nil, err
	}
	r := &Restored{Epoch: tip.Epoch, Head: srep.Head, Length: srep.Length, Verified: len(segs),
		StateEvent: tip.State.Event, HasState: tip.State.HasState, Holds: tr.holds}
	if r.HasState {
		r.StateSha256 = tip.State.Sha256
		if r.State, err = fetchState(ctx, st, StateKey(id, tip.State.Epoch, &tip.State), &tip.State); err != nil {
			return nil, err
		}
	}
	return r, nil
}
