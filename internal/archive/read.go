package archive

import (
	"context"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// Reading parts of a history one segment at a time, for a reader that
// needs a range of events and not the state (the host's log endpoint):
// Since finds the segments, ReadSegment downloads and checks one.

// Since returns the segments of the history from the one holding event
// seq (the first segment when seq is before the history) to the tip,
// oldest first, loading only the pages they lie in; none when the history
// holds no segment yet. Each continues the one before (checked on the
// manifests' hashes).
func (h *History) Since(ctx context.Context, seq uint64) ([]Placed, error) {
	if len(h.runs) == 0 {
		return nil, nil
	}
	segs, _, err := h.since(ctx, seq)
	return segs, err
}

// ReadSegment downloads p, a segment of id's history, and checks it as
// Verify does against its manifest entry: the object's size and SHA-256,
// every record's framing, hash and link, its first event linked to the
// parent the entry names, its first and last seq and head. fn sees each
// event once its record is checked; an error from fn ends the read and is
// returned as it is. The store's failures are returned wrapped; every
// other problem is ErrBroken.
func ReadSegment(ctx context.Context, st objstore.Store, id string, p *Placed, fn func(chain.Event) error) error {
	var prev *chain.Link
	if p.First > 0 {
		hd, err := chain.ParseHash(p.Parent)
		if err != nil {
			return broken("segment %s: parent: %v", p.Key(id), err)
		}
		prev = &chain.Link{Length: p.First, Head: hd}
	}
	tr := &stateTrack{each: fn}
	_, err := fetchSegment(ctx, st, id, p, prev, tr)
	if tr.eachErr != nil {
		return tr.eachErr
	}
	return err
}
