package actorhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// segmentRotation is what a SegmentStart that begins a rotated chain file
// says besides the head it continues: the file the events before it went
// to. Such a SegmentStart also records the actor's state (the top-level
// hasState and stateSha256 of segmentData's rotation), so that a start
// that reads only the new file resumes that state, checked against the
// saved slots as any state event is.
type segmentRotation struct {
	// File is the rotated file's name in the actor's directory.
	File string `json:"file"`
}

// errNoSavedState stops a rotation of a chain whose actor has no saved
// state yet: its SegmentStart could record none that a start would find.
var errNoSavedState = errors.New("no state saved yet")

// rotationData is the data of a rotation's SegmentStart.
type rotationData struct {
	PreviousHead   string           `json:"previousHead"`
	PreviousLength uint64           `json:"previousLength"`
	ActorID        string           `json:"actorID"`
	Rotated        *segmentRotation `json:"rotated"`
	stateRecord
}

// rotationState reads the state a SegmentStart records, when it begins a
// rotated file; ok is false for any other SegmentStart (a move's, whose
// state, if any, comes from elsewhere).
func rotationState(data []byte) (stateRecord, bool) {
	var d struct {
		Rotated *segmentRotation `json:"rotated"`
	}
	if json.Unmarshal(data, &d) != nil || d.Rotated == nil {
		return stateRecord{}, false
	}
	return parseStateRecord(data)
}

// RotatePoint is ArchivePoint that also moves the chain's events up to
// the point out of chain.log, when the actor's state is saved (after its
// first state event): chain.log is renamed chain.log.<length>
// (actordir.RotatedChainPath), with the state as of the point beside it
// (actordir.RotatedStatePath), and the chain goes on in a new chain.log
// whose first event is a SegmentStart that continues the point's head and
// records that state (chain.Chain.Rotate). The point's Path is then the
// rotated file, and Rotated is set: the archive's segment up to the point
// is read from there, and the file can be removed once the archive holds
// it. The actor's disk budget counts the new file from then on.
func (a *Actor) RotatePoint(ctx context.Context) (ArchivePoint, error) {
	if a.cfg.Dir == "" {
		return ArchivePoint{}, errors.New("the actor keeps its chain in memory: nothing to archive")
	}
	if err := a.acquire(ctx); err != nil {
		return ArchivePoint{}, fmt.Errorf("waiting for actor %s's call in progress: %w", a.id, err)
	}
	defer a.unlock()
	// The state cannot change under the call lock.
	a.mu.Lock()
	s := a.state
	a.mu.Unlock()
	point := func() (ArchivePoint, error) {
		end, off, err := a.chain.SyncEnd()
		if err != nil {
			return ArchivePoint{}, fmt.Errorf("making actor %s's chain durable: %w", a.id, err)
		}
		return ArchivePoint{Path: a.chain.Path(), End: end, Offset: off, HasState: s.hasState, State: s.state}, nil
	}
	if a.Phase() != PhaseRunning {
		return point()
	}
	dir := a.cfg.Dir
	rec := a.stateRecord()
	var rotated, saved string
	rot, err := a.chain.RotateAt(func(end chain.Link) (string, []byte, error) {
		// Every event is written now (under the chain's lock, which also
		// guards the store), so the slot saved last holds the state the
		// chain records last, unless none was ever saved.
		if a.store.cur < 0 {
			return "", nil, errNoSavedState
		}
		// Saved before the rotated name exists: a start that finds the
		// name finds the state, and removes a state with no name.
		if err := actordir.WriteRotatedState(dir, end.Length, actordir.SavedState{
			State: actordir.State{HasState: s.hasState, Data: s.state}, Seq: end.Length, Durable: end.Length,
		}); err != nil {
			return "", nil, err
		}
		saved = actordir.RotatedStatePath(dir, end.Length)
		rotated = actordir.RotatedChainPath(dir, end.Length)
		data, err := json.Marshal(rotationData{PreviousHead: end.Head.String(), PreviousLength: end.Length, ActorID: a.id,
			Rotated: &segmentRotation{File: filepath.Base(rotated)}, stateRecord: rec})
		return rotated, data, err
	})
	if errors.Is(err, errNoSavedState) {
		return point()
	}
	if err != nil {
		if _, serr := os.Stat(rotated); saved != "" && errors.Is(serr, os.ErrNotExist) {
			_ = os.Remove(saved)
		}
		return ArchivePoint{}, fmt.Errorf("rotating actor %s's chain: %w", a.id, err)
	}
	a.budget.SetChainBytes(a.chain.Size())
	a.log.V(1).Info("rotated the actor's chain file", "actorID", a.id, "rotated", rotated, "length", rot.End.Length, "bytes", rot.Size)
	return ArchivePoint{Path: rotated, Rotated: true, End: rot.End, Offset: rot.Size, HasState: s.hasState, State: s.state}, nil
}

// recoverRotation undoes, in dir whose chain lock the caller holds, what a
// crash in the middle of a rotation left (chain.RecoverRotation), and
// removes the states no rotated file goes with.
func recoverRotation(dir string) error {
	rotated, _, err := actordir.ListRotated(dir)
	if err != nil {
		return err
	}
	paths := make([]string, len(rotated))
	for i, r := range rotated {
		paths[i] = r.Path
	}
	if _, err := chain.RecoverRotation(actordir.ChainPath(dir), paths); err != nil {
		return fmt.Errorf("recovering an interrupted rotation: %w", err)
	}
	_, orphans, err := actordir.ListRotated(dir)
	if err != nil {
		return err
	}
	for _, o := range orphans {
		if err := os.Remove(o); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing the state %s of a rotation that did not happen: %w", o, err)
		}
	}
	return nil
}
