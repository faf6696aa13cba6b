package archiver

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// LeftoverResult says what ShipLeftovers did with a directory.
type LeftoverResult struct {
	ActorID string
	// Epoch is the epoch the events were uploaded under.
	Epoch int64
	// From and To: the archive held the chain up to From before, To after.
	From, To uint64
	// Skipped says why nothing was uploaded ("" when something was, or
	// nothing was missing).
	Skipped string
}

// ShipLeftovers uploads the events an actor's directory on this node
// holds beyond its archive: what a host that crashed (or was stopped
// while the store was down) did not upload. They are uploaded under the
// epoch that wrote them: the highest epoch with a manifest, when this
// node wrote it (a host claims before it runs, so the last epoch that ran
// here is the highest one that claimed from here, unless a later one
// claimed elsewhere). When a later epoch claimed from another node, the
// events are left on the node (Skipped): that epoch's history no longer
// takes them. This is what lets a move that waits for its old node
// finish once the node is back. Nothing is uploaded for an Actor that was
// deleted (its tombstone is in the store): the directory stays on the
// node as it is. The directory's chain lock is held
// throughout, so no run starts on it meanwhile.
func (ar *Archiver) ShipLeftovers(ctx context.Context, st objstore.Store, dir, host, node string, maxStateBytes int) (LeftoverResult, error) {
	if _, err := os.Stat(actordir.ChainPath(dir)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return LeftoverResult{Skipped: "no chain"}, nil
		}
		return LeftoverResult{}, err
	}
	l, err := actorhost.OpenLeftover(dir, maxStateBytes)
	if errors.Is(err, chain.ErrLocked) {
		return LeftoverResult{Skipped: "a run holds the chain"}, nil
	}
	if err != nil {
		return LeftoverResult{}, err
	}
	defer l.Close()
	res := LeftoverResult{ActorID: l.ID()}
	// A deleted Actor's archive is being retired (docs/archive.md,
	// retention): uploading would recreate what the retention removes.
	deleted, err := archive.HasTombstone(ctx, st, l.ID())
	if err != nil {
		return res, err
	}
	if deleted {
		res.Skipped = "the Actor was deleted: its archive is retired (" + archive.TombstoneKey(l.ID()) + ")"
		return res, nil
	}
	h, err := archive.Resolve(ctx, st, l.ID())
	if errors.Is(err, archive.ErrNoHistory) {
		res.Skipped = "the actor was never archived"
		return res, nil
	}
	if err != nil {
		return res, err
	}
	if h.Top.Node != node {
		res.Skipped = fmt.Sprintf("epoch %d claimed the archive from node %q", h.Top.Epoch, h.Top.Node)
		return res, nil
	}
	res.Epoch = h.Top.Epoch
	w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: l.ID(), Epoch: h.Top.Epoch, Host: host, Node: node})
	if errors.Is(err, archive.ErrFenced) {
		res.Skipped = err.Error()
		return res, nil
	}
	if err != nil {
		return res, err
	}
	if tip, ok := w.Tip(); ok {
		res.From = tip.Length
	}
	length, _ := l.Progress()
	if length == res.From {
		res.To = res.From
		return res, nil
	}
	s, err := ar.Ship(ctx, w, leftoverSource{l}, ar.log.WithValues("leftover", dir), nil)
	if err != nil {
		return res, err
	}
	if err := s.Flush(ctx); err != nil {
		if errors.Is(err, archive.ErrFenced) {
			res.Skipped = err.Error()
			return res, nil
		}
		return res, err
	}
	res.To = s.Archived()
	return res, nil
}
