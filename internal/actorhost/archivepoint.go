package actorhost

import (
	"context"
	"errors"
	"fmt"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
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
	// Rotated: the point ends a chain file that was rotated at it
	// (RotatePoint); Path is that file, and the chain goes on in a new
	// chain.log whose first event (a SegmentStart) is at End.Length.
	Rotated bool
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

// Leftover is the chain and saved state an actor left in its directory
// when its run did not end here (the host crashed), opened as a start
// would open them, without running the actor: so that what a host
// uploads of them is exactly what a start on this node would resume
// from. It holds the chain's lock until Close.
type Leftover struct {
	id    string
	ch    *chain.Chain
	state savedState
}

// OpenLeftover opens dir's chain and saved states the way a start does:
// a torn tail is cut, and the events of a write a crash cut short after
// an unsaved state are cut back (both were never durable, and the next
// start would cut them too); the state is the one the chain then records
// last. A directory with no identity, or that a run holds, is an error.
func OpenLeftover(dir string, maxStateBytes int) (*Leftover, error) {
	id, ok, err := actordir.ReadIdentity(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s holds no actor identity", dir)
	}
	if maxStateBytes <= 0 {
		maxStateBytes = limits.DefaultMaxStateBytes
	}
	lock, err := chain.Lock(actordir.ChainPath(dir))
	if err != nil {
		return nil, err
	}
	if err := recoverRotation(dir); err != nil {
		lock.Release()
		return nil, fmt.Errorf("actor %s: %w", id.ID, err)
	}
	states, err := loadStates(dir, maxStateBytes)
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("actor %s: %w", id.ID, err)
	}
	tracker := stateTracker{boundary: states.boundary()}
	ch, _, err := lock.Open(chain.Options{Floor: states.floor(), Observe: tracker.observe})
	if err != nil {
		return nil, fmt.Errorf("actor %s: %w", id.ID, err)
	}
	r, _, _, err := settleStates(ch, states, &tracker)
	if err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("actor %s: %w", id.ID, err)
	}
	if r.ok && r.event == nil {
		_ = ch.Close()
		return nil, fmt.Errorf("actor %s: its saved state is one the chain does not record (%s)", id.ID, r.note)
	}
	return &Leftover{id: id.ID, ch: ch, state: r.state}, nil
}

// ID is the actor's id, as its directory records it.
func (l *Leftover) ID() string { return l.id }

// ArchivePoint is the chain's end with the state it records last.
func (l *Leftover) ArchivePoint(context.Context) (ArchivePoint, error) {
	end, off, err := l.ch.SyncEnd()
	if err != nil {
		return ArchivePoint{}, err
	}
	return ArchivePoint{Path: l.ch.Path(), End: end, Offset: off, HasState: l.state.hasState, State: l.state.state}, nil
}

// Progress returns the chain's length and file size.
func (l *Leftover) Progress() (uint64, int64) {
	_, n := l.ch.Head()
	return n, l.ch.Size()
}

// Close releases the chain and its lock.
func (l *Leftover) Close() error { return l.ch.Close() }
