package actorhost

import (
	"context"
	"errors"
	"fmt"

	"github.com/troupe-dev/troupe/internal/chain"
)

// ArchivePoint is a point of an actor's chain file that can be uploaded
// as the end of an archived segment: every record before it is durable,
// and State is the state the chain records last at or before it (what
// archive.Writer.Append checks the segment's state against).
type ArchivePoint struct {
	// Path is the chain file.
	Path string
	// End is the chain's length and head at the point.
	End chain.Link
	// Offset is the file's size up to the point: where the record of seq
	// End.Length starts. The bytes before it never change again.
	Offset int64
	// HasState and State are the actor's state as of the point; State is
	// the actor's and must not be modified.
	HasState bool
	State    []byte
}

// ArchivePoint returns the chain's end as a point to archive up to,
// making it durable first. It takes the call lock, under which alone the
// state changes and events recording it are appended, so the state it
// returns is the one the chain's last state-recording event records; it
// waits for a call in progress until ctx ends. It works on a run that
// ended too (the chain's closed end, the final state). An actor without
// a directory has no file to archive.
func (a *Actor) ArchivePoint(ctx context.Context) (ArchivePoint, error) {
	if a.cfg.Dir == "" {
		return ArchivePoint{}, errors.New("the actor keeps its chain in memory: nothing to archive")
	}
	if err := a.acquire(ctx); err != nil {
		return ArchivePoint{}, fmt.Errorf("waiting for actor %s's call in progress: %w", a.id, err)
	}
	defer a.unlock()
	end, off, err := a.chain.SyncEnd()
	if err != nil {
		return ArchivePoint{}, fmt.Errorf("making actor %s's chain durable: %w", a.id, err)
	}
	a.mu.Lock()
	s := a.state
	a.mu.Unlock()
	return ArchivePoint{Path: a.chain.Path(), End: end, Offset: off, HasState: s.hasState, State: s.state}, nil
}
