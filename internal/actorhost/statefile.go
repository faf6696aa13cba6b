package actorhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// An actor's directory (ActorConfig.Dir) is laid out, read and written by
// package actordir; this file keeps its saved state and its chain in step.
//
// The rule: a start resumes from exactly the state the chain records last
// (the last InitResult or ActorTick), never from one the chain does not
// record, whatever moment a crash hit. A state is therefore saved before
// the event that records it is appended, in one of two slots, and a slot
// is overwritten only once the event that records the state in the other
// slot is durable: whatever the chain holds after a crash, one slot holds
// the state of its last state event (the other may hold a newer state the
// chain never recorded, or be torn). Each slot also records the chain's
// durable length when it was written, which the chain can never again be
// shorter than: a chain cut back below it is refused (chain.Floor).
//
// Costs: one fdatasync per saved state (plus one of the directory the first
// time a slot file is made), where the single state file replaced by a
// rename needed two; and none on the chain, unless the actor changes its
// state twice within one group commit, when the second change waits for
// the first one's event to be synced.

// savedState is a state as saved: hasState false when init returned none.
type savedState struct {
	hasState bool
	state    []byte
}

// stateStore saves an actor's states in its directory, in turn in the two
// slots. Used under the call lock.
type stateStore struct {
	dir string
	// cur is the slot holding the state the chain records last (-1: none
	// does yet), and curSeq the seq of the event that records it.
	cur    int
	curSeq uint64
	// legacy: the state file of Troupe v0.1.0 is still there; it goes once
	// a slot's state is durably recorded.
	legacy bool
}

// save saves s in the slot that does not hold the state the chain records
// last, and returns that slot, for recorded once its event is appended.
// Before that slot is overwritten, the event that records the other one is
// made durable.
func (st *stateStore) save(ch *chain.Chain, s savedState) (int, error) {
	slot := 0
	if st.cur >= 0 {
		if err := ch.SyncThrough(st.curSeq + 1); err != nil {
			return -1, err
		}
		if st.legacy {
			// Nothing reads it while a recorded slot exists; left behind
			// by a crash, it is removed the next time.
			if err := os.Remove(filepath.Join(st.dir, actordir.StateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return -1, fmt.Errorf("removing the state file of Troupe v0.1.0: %w", err)
			}
			st.legacy = false
		}
		slot = 1 - st.cur
	}
	_, length := ch.Head()
	err := actordir.WriteStateSlot(st.dir, slot, actordir.SavedState{
		State: actordir.State{HasState: s.hasState, Data: s.state},
		Seq:   length, Durable: ch.Durable(),
	})
	if err != nil {
		return -1, err
	}
	return slot, nil
}

// recorded notes that the event at seq records the state saved in slot.
func (st *stateStore) recorded(slot int, seq uint64) {
	if slot >= 0 {
		st.cur, st.curSeq = slot, seq
	}
}

// savedStates is what a start finds in the actor's directory before it
// opens the chain: the slots, and the state file of Troupe v0.1.0.
type savedStates struct {
	dir    string
	slots  [2]actordir.StateSlot
	legacy *actordir.State
}

// loadStates reads the saved states of dir. A slot that is damaged is no
// error yet (it may be one a crash tore, which the chain then does not
// record); one of an unknown version, or too large, is.
func loadStates(dir string, maxState int) (*savedStates, error) {
	slots, err := actordir.ReadStateSlots(dir, maxState)
	if err != nil {
		return nil, err
	}
	s := &savedStates{dir: dir, slots: slots}
	legacy, ok, err := actordir.ReadState(dir, maxState)
	if err != nil {
		return nil, err
	}
	if ok {
		s.legacy = &legacy
	}
	return s, nil
}

// legacyFloor is how long a chain was, durably, whenever Troupe v0.1.0 had
// written its state file: v0.1.0 saved a state only after the run's
// ActorStart and InitCall, lifecycle events it synced as it appended them.
const legacyFloor = 2

// floor is the length the chain reached durably, by what the slots say,
// or the v0.1.0 state file when no slot says more.
func (s *savedStates) floor() chain.Floor {
	var f chain.Floor
	for _, sl := range s.slots {
		if sl.Present && sl.Err == nil && sl.Saved.Durable > f.Length {
			f = chain.Floor{Length: sl.Saved.Durable, Source: fmt.Sprintf("the saved state %s (saved before event %d)",
				filepath.Join(s.dir, sl.Name), sl.Saved.Seq)}
		}
	}
	if s.legacy != nil && f.Length < legacyFloor {
		f = chain.Floor{Length: legacyFloor, Source: fmt.Sprintf("the state file %s of Troupe v0.1.0 (saved after the run's ActorStart and InitCall were durable)",
			filepath.Join(s.dir, actordir.StateFile))}
	}
	return f
}

// chainState is the last state a chain records: the seq of the event and
// the state it describes.
type chainState struct {
	seq    uint64
	record stateRecord
}

// stateTracker watches the events chain.Open reads for the last one that
// records a state: an ActorTick or a HandlerResult (ok or not, each
// carries the actor's state after it) or an ok InitResult.
type stateTracker struct {
	found bool
	seq   uint64
	data  []byte
}

func (t *stateTracker) observe(e chain.Event) {
	switch e.Kind {
	case chain.KindTick, chain.KindHandlerResult:
	case chain.KindInitResult:
		// Rare (one a run): decoded at once, as a failed one carries no
		// state and must not hide the one before it.
		if _, ok := parseStateRecord(e.Data); !ok {
			return
		}
	default:
		return
	}
	t.found, t.seq, t.data = true, e.Seq, append(t.data[:0], e.Data...)
}

// last returns the last state the chain records; nil when none.
func (t *stateTracker) last() (*chainState, error) {
	if !t.found {
		return nil, nil
	}
	r, ok := parseStateRecord(t.data)
	if !ok {
		return nil, fmt.Errorf("the chain's event %d records no readable state: %.200s", t.seq, t.data)
	}
	return &chainState{seq: t.seq, record: r}, nil
}

// parseStateRecord reads the state an event's data records; v0.1.0's
// ActorTick events name the digest stateDigest.
func parseStateRecord(data []byte) (stateRecord, bool) {
	var d struct {
		HasState *bool  `json:"hasState"`
		Sha256   string `json:"stateSha256"`
		Digest   string `json:"stateDigest"`
	}
	if json.Unmarshal(data, &d) != nil || d.HasState == nil {
		return stateRecord{}, false
	}
	r := stateRecord{HasState: *d.HasState, Sha256: d.Sha256}
	if r.Sha256 == "" {
		r.Sha256 = d.Digest
	}
	return r, true
}

// matches reports whether s is the state r describes.
func (r stateRecord) matches(s actordir.State) bool {
	if r.HasState != s.HasState {
		return false
	}
	return !r.HasState || r.Sha256 == digestHex(s.Data)
}

// resumption is where a start resumes from.
type resumption struct {
	// ok: resume from state; else init gets the initial state.
	ok    bool
	state savedState
	// event is the seq of the event that recorded state; nil when the
	// chain records it nowhere (a v0.1.0 state file, see note).
	event *uint64
	// note says why a resumed state is not the one the chain records last.
	note string
}

// pick decides what a start resumes from, now that the chain was read: the
// slot holding the state the chain records last. The v0.1.0 state file
// stands in for the slots until one is written. Any other state is refused:
// older would silently undo what the chain says happened, newer was never
// recorded.
func (s *savedStates) pick(last *chainState) (resumption, stateStore, error) {
	st := stateStore{dir: s.dir, cur: -1, legacy: s.legacy != nil}
	if last == nil && s.legacy == nil {
		// The chain records no state: the actor starts afresh, and what a
		// slot holds was saved for an event that never made it.
		return resumption{}, st, nil
	}
	if last != nil {
		best := -1
		for i, sl := range s.slots {
			if sl.Present && sl.Err == nil && sl.Saved.Seq <= last.seq && last.record.matches(sl.Saved.State) &&
				(best < 0 || sl.Saved.Seq > s.slots[best].Saved.Seq) {
				best = i
			}
		}
		if best >= 0 {
			st.cur, st.curSeq = best, last.seq
			seq := last.seq
			sv := s.slots[best].Saved
			return resumption{ok: true, state: savedState{hasState: sv.HasState, state: sv.Data}, event: &seq}, st, nil
		}
	}
	if s.legacy != nil {
		// A directory of Troupe v0.1.0, which saved the state before it
		// recorded it, and no slot holds a recorded state yet (the state
		// file goes once one does): the state file is all there is.
		// Resumed as v0.1.0 did, saying in the chain when it is not the
		// state the chain records last, rather than refusing the
		// directory.
		r := resumption{ok: true, state: savedState{hasState: s.legacy.HasState, state: s.legacy.Data}}
		switch {
		case last != nil && last.record.matches(*s.legacy):
			seq := last.seq
			r.event = &seq
		case last != nil:
			r.note = fmt.Sprintf("the state file %s of Troupe v0.1.0 is not the state the chain records last (event %d); v0.1.0 saved a state before recording it, so a crash could leave it ahead of the chain",
				actordir.StateFile, last.seq)
		default:
			r.note = fmt.Sprintf("the chain records no state, but Troupe v0.1.0 left the state file %s; v0.1.0 saved a state before recording it, so a crash could leave it ahead of the chain",
				actordir.StateFile)
		}
		return r, st, nil
	}
	return resumption{}, st, fmt.Errorf("the chain records %s at event %d as the actor's last state, but no saved state holds it (%s): refusing to resume from a state the chain does not record (restore the state, or move the actor's directory aside to start over)",
		last.record.describe(), last.seq, s.describe())
}

// describe says what the slots hold, for errors.
func (s *savedStates) describe() string {
	var parts []string
	for _, sl := range s.slots {
		path := filepath.Join(s.dir, sl.Name)
		switch {
		case !sl.Present:
			parts = append(parts, path+": none")
		case sl.Err != nil:
			parts = append(parts, sl.Err.Error())
		default:
			r := stateRecord{HasState: sl.Saved.HasState, Sha256: digestHex(sl.Saved.Data)}
			parts = append(parts, fmt.Sprintf("%s: %s, saved for event %d", path, r.describe(), sl.Saved.Seq))
		}
	}
	if s.legacy != nil {
		parts = append(parts, actordir.StateFile+" of Troupe v0.1.0")
	}
	return strings.Join(parts, "; ")
}

// describe names a state by its digest.
func (r stateRecord) describe() string {
	if !r.HasState {
		return "no state"
	}
	return "state sha256:" + r.Sha256[:min(12, len(r.Sha256))]
}

// claimDir makes dir (created if need be) the directory of the actor id,
// and returns that id: "" takes the id dir was claimed for before, or a
// new UUID. A dir claimed by another actor is an error, so two actors can
// never write one chain. Called with the chain's lock held, so that two
// starts on a fresh directory cannot both write an identity.
func claimDir(dir, id, name, namespace string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("creating its directory: %w", err)
	}
	saved, ok, err := actordir.ReadIdentity(dir)
	switch {
	case err != nil:
		return "", err
	case ok && id == "":
		return saved.ID, nil
	case ok && saved.ID != id:
		return "", fmt.Errorf("actor %s: directory %s belongs to actor %s", id, dir, saved.ID)
	case ok:
		return id, nil
	}
	if id == "" {
		id = uuid.NewString()
	}
	if err := actordir.WriteIdentity(dir, actordir.Identity{ID: id, Name: name, Namespace: namespace}); err != nil {
		return "", err
	}
	return id, nil
}
