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
// (the last InitResult, ActorTick or HandlerResult), never from one the
// chain does not record, whatever moment a crash hit. States are saved in
// two slots, in turn, and never on a call's path: a call only changes the
// state in memory, and the chain's event that records it notes it
// (stateStore.recorded). The save happens when the chain is about to hand
// that event to its file, in the chain's BeforeWrite (stateStore.save):
// whichever path writes (the group commit every 20 ms, a full buffer, a
// lifecycle event, Sync, Close), it first makes every event already in the
// file durable, then writes the newest state the events about to be
// written record into the slot that does not hold the last saved one (with
// fdatasync), and only then lets the events go. So:
//
//   - the chain file never holds an event recording a state that was not
//     saved first, and a slot is overwritten only once the events that
//     record the other slot's state are durable;
//   - a write carries all the state changes of its events, but only the
//     newest state is saved: a state an earlier event of the same write
//     records (an intermediate one) is in no slot. A crash that cuts the
//     write short after such an event leaves a chain whose last state is
//     in no slot. Such a chain is recognized by the slot saved last: it
//     names an event (Seq) the chain does not hold, and says how far the
//     chain was durable (Durable) when it was saved, which is where the
//     write began; the last state event lies between the two. Those events
//     were never durable (the write was cut before any fsync covered it),
//     so the start cuts the chain back to where the write began
//     (chain.CutBack) and resumes from the state the chain then records
//     last, which the other slot holds. This is the one case where a start
//     drops whole events: a crash in the middle of a write, losing what a
//     power cut could lose anyway under group commit.
//
// Each slot also records the chain's durable length when it was written,
// which the chain can never again be shorter than: a chain cut back below
// it is refused (chain.Floor).
//
// Costs: on a group-commit chain, one fdatasync of a slot per write that
// carries a state change (about one per group commit, however many calls
// changed the state), and none on the chain, whose previous group commit
// has normally synced what is in the file already; on a sync chain, which
// writes every event at once, one per state change, as before.

// savedState is a state as saved: hasState false when init returned none.
// Its bytes are never modified once it is the actor's state: the chain's
// write hook may save them on another goroutine.
type savedState struct {
	hasState bool
	state    []byte
}

// stateStore saves an actor's states in its directory, in turn in the two
// slots. Its fields are guarded by the chain's lock: recorded runs inside
// the chain's AppendNoting, save is the chain's BeforeWrite.
type stateStore struct {
	dir string
	// charge counts a slot written against the actor's disk budget.
	charge func(n int)
	// cur is the slot holding the state saved last (-1: none yet), and
	// first the slot the first state goes in while there is none: the one
	// saved last by an earlier run (if any), which may name an event past
	// the chain's end; after it, the slot saved last is the newest.
	cur, first int
	// next is the newest state an event records that is not saved yet,
	// nextSeq that event (the first to record it), and charged what was
	// charged for saving it: the largest of the states it replaced.
	next    savedState
	nextSeq uint64
	hasNext bool
	charged int
	// legacy: the state file of Troupe v0.1.0 is still there; it goes once
	// a slot's state is durably recorded.
	legacy bool
}

// recorded notes that the event at seq records s, the actor's new state;
// called by the chain before that event can be written, on the path of
// the call that changed the state. The slot write it will take is charged
// to the actor's disk budget here, once per write however many changes
// it carries (as the largest of them): charged now rather than when the
// write is made, so that the debt it leaves delays the actor's next tick
// (armTick reads Backlog as soon as the tick returns) and refuses the
// messages that would bring more changes (TryAdmit).
func (st *stateStore) recorded(seq uint64, s savedState) {
	if !st.hasNext {
		st.charged = 0
	}
	if n := len(s.state); n > st.charged && st.charge != nil {
		st.charge(n - st.charged)
		st.charged = n
	}
	st.next, st.nextSeq, st.hasNext = s, seq, true
}

// save is the chain's BeforeWrite: when the events about to be written
// record a state that is not saved yet, it makes the events already in the
// file durable (so the slot saved last is no longer needed, and the write
// begins where the chain is durable), saves the newest such state in the
// other slot, and returns; the events follow.
func (st *stateStore) save(w chain.Write) error {
	if !st.hasNext {
		return nil
	}
	// A state is noted as its event is appended, and unsaved events are
	// all in the write: nextSeq lies in [w.From, w.To).
	var durable uint64
	var err error
	if st.cur < 0 && !st.legacy {
		// The chain records no state (pick): no slot is relied on, so
		// none needs the events already in the file durable before it
		// is written over, and no crash can leave a state event of them
		// that a slot lacks. The slot says how far the chain is durable
		// without an fsync to make it further: a fresh actor's first
		// save costs no fsync of its ActorStart and InitCall, which its
		// InitResult's fsync covers.
		durable = w.Durable()
	} else if durable, err = w.SyncWritten(); err != nil {
		return err
	}
	slot := st.first
	if st.cur >= 0 {
		if st.legacy {
			// Nothing reads it while a recorded slot exists; left behind
			// by a crash, it is removed the next time.
			if err := os.Remove(filepath.Join(st.dir, actordir.StateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing the state file of Troupe v0.1.0: %w", err)
			}
			st.legacy = false
		}
		slot = 1 - st.cur
	}
	s := st.next
	dirSynced, err := actordir.SaveStateSlot(st.dir, slot, actordir.SavedState{
		State: actordir.State{HasState: s.hasState, Data: s.state},
		Seq:   st.nextSeq, Durable: durable,
	})
	if err != nil {
		return err
	}
	if dirSynced {
		// The chain file is in the same directory: its entry (and the
		// identity's, on a fresh start) is durable now.
		w.DirSynced()
	}
	st.cur = slot
	st.next, st.hasNext = savedState{}, false
	return nil
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
// carries the actor's state after it), an ok InitResult, or the
// SegmentStart a rotated chain file begins with; and for the
// last one before boundary, where the write that a crash may have cut
// short began (savedStates.tornWrite).
type stateTracker struct {
	boundary uint64
	last_    trackedState
	before   trackedState
}

type trackedState struct {
	found bool
	seq   uint64
	data  []byte
}

func (t *trackedState) set(e chain.Event) {
	t.found, t.seq, t.data = true, e.Seq, append(t.data[:0], e.Data...)
}

// state returns the state it tracked; nil when none.
func (t *trackedState) state() (*chainState, error) {
	if !t.found {
		return nil, nil
	}
	r, ok := parseStateRecord(t.data)
	if !ok {
		return nil, fmt.Errorf("the chain's event %d records no readable state: %.200s", t.seq, t.data)
	}
	return &chainState{seq: t.seq, record: r}, nil
}

func (t *stateTracker) observe(e chain.Event) {
	switch e.Kind {
	case chain.KindTick, chain.KindHandlerResult:
	case chain.KindSegmentStart:
		// A rotated file's first event records the state the actor had
		// when its chain was rotated (rotate.go); a move's does not.
		if _, ok := rotationState(e.Data); !ok {
			return
		}
	case chain.KindInitResult:
		// Rare (one a run): decoded at once, as a failed one carries no
		// state and must not hide the one before it.
		if _, ok := parseStateRecord(e.Data); !ok {
			return
		}
	default:
		return
	}
	t.last_.set(e)
	if e.Seq < t.boundary {
		t.before.set(e)
	}
}

// last returns the last state the chain records; nil when none.
func (t *stateTracker) last() (*chainState, error) { return t.last_.state() }

// lastBefore returns the last state the chain records before boundary.
func (t *stateTracker) lastBefore() (*chainState, error) { return t.before.state() }

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
	// reason, when set, is where the state came from (the archive), for
	// the ActorRestart event; "" is the saved state.
	reason string
}

// newest is the valid slot saved last (the larger Seq), -1 when none.
func (s *savedStates) newest() int {
	best := -1
	for i, sl := range s.slots {
		if sl.Present && sl.Err == nil && (best < 0 || sl.Saved.Seq > s.slots[best].Saved.Seq) {
			best = i
		}
	}
	return best
}

// boundary is where the write the slot saved last was saved for began:
// the chain's durable length when it was saved. The stateTracker keeps
// the last state before it, for a start that cuts the chain back there.
func (s *savedStates) boundary() uint64 {
	if n := s.newest(); n >= 0 {
		return s.slots[n].Saved.Durable
	}
	return 0
}

// holds reports whether a slot holds the state last records, as pick
// wants it.
func (s *savedStates) holds(last *chainState) bool {
	for _, sl := range s.slots {
		if sl.Present && sl.Err == nil && sl.Saved.Seq <= last.seq && last.record.matches(sl.Saved.State) {
			return true
		}
	}
	return false
}

// tornWrite reports whether a crash cut short the write that the slot
// saved last was saved for, after an event recording an intermediate
// state (one no slot holds): the slot names an event the chain (length
// events long) does not hold, and the chain's last state event lies
// between where that write began and that event. It returns the length to
// cut the chain back to, where the write began: nothing from there on was
// ever durable, and the chain before it records last the state the other
// slot holds. The chain's last state must be one no slot holds (the
// caller checks holds first).
func (s *savedStates) tornWrite(last *chainState, length uint64) (uint64, bool) {
	n := s.newest()
	if n < 0 || last == nil {
		return 0, false
	}
	sv := s.slots[n].Saved
	if sv.Seq < length || last.seq < sv.Durable || last.seq >= sv.Seq {
		return 0, false
	}
	return sv.Durable, true
}

// pick decides what a start resumes from, now that the chain was read: the
// slot holding the state the chain records last. The v0.1.0 state file
// stands in for the slots until one is written. Any other state is refused:
// older would silently undo what the chain says happened, newer was never
// recorded.
func (s *savedStates) pick(last *chainState) (resumption, stateStore, error) {
	st := stateStore{dir: s.dir, cur: -1, first: max(s.newest(), 0), legacy: s.legacy != nil}
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
			st.cur = best
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

// cutBack is what settleStates cut off the chain: the events from up to
// (not including) to, bytes in all.
type cutBack struct {
	from, to uint64
	bytes    int64
}

// settleStates decides what a start resumes from, once ch was opened with
// tracker observing it: the state the chain records last (pick). When a
// crash cut short a write of the chain after an event recording a state
// that was never saved (tornWrite), it first cuts the chain back to where
// that write began, and says so.
func settleStates(ch *chain.Chain, states *savedStates, tracker *stateTracker) (resumption, stateStore, *cutBack, error) {
	last, err := tracker.last()
	if err != nil {
		return resumption{}, stateStore{}, nil, err
	}
	var cut *cutBack
	if last != nil && !states.holds(last) {
		_, length := ch.Head()
		if to, ok := states.tornWrite(last, length); ok {
			if last, err = tracker.lastBefore(); err != nil {
				return resumption{}, stateStore{}, nil, err
			}
			n, err := ch.CutBack(to)
			if err != nil {
				return resumption{}, stateStore{}, nil, err
			}
			cut = &cutBack{from: to, to: length, bytes: n}
		}
	}
	r, st, err := states.pick(last)
	return r, st, cut, err
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
// starts on a fresh directory cannot both write an identity. newChain:
// Lock created the chain file, whose first fsync syncs the directory, so
// a new identity leaves its directory entry to that fsync.
func claimDir(dir, id, name, namespace string, newChain bool) (string, error) {
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
	write := actordir.WriteIdentity
	if newChain {
		write = actordir.CreateIdentity
	}
	if err := write(dir, actordir.Identity{ID: id, Name: name, Namespace: namespace}); err != nil {
		return "", err
	}
	return id, nil
}
