package actorhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// readState returns the state a start on dir would resume from, as the
// start decides it: the slot holding the state the chain records last.
func readState(dir string, maxState int) (savedState, bool, error) {
	states, err := loadStates(dir, maxState)
	if err != nil {
		return savedState{}, false, err
	}
	var tracker stateTracker
	if err := chain.ReadFile(actordir.ChainPath(dir), func(e chain.Event) error {
		tracker.observe(e)
		return nil
	}); err != nil && !errors.Is(err, os.ErrNotExist) {
		return savedState{}, false, err
	}
	last, err := tracker.last()
	if err != nil {
		return savedState{}, false, err
	}
	r, _, err := states.pick(last)
	return r.state, r.ok, err
}

// TestStatesAreSavedBeforeTheirEventsAreWritten follows the chain's write
// hook step by step, reading the chain file and the slots at each: a
// changed state costs nothing until its event is about to be written;
// then the newest state the write records (not the ones before it in the
// same write) is saved in the slot that does not hold the last one, saying
// where the write begins (Durable), before any of the write's bytes reach
// the file; and the events already in the file are synced first when
// group commit has not done it.
func TestStatesAreSavedBeforeTheirEventsAreWritten(t *testing.T) {
	dir := t.TempDir()
	path := actordir.ChainPath(dir)
	st := stateStore{dir: dir, cur: -1}
	charged := 0
	st.charge = func(n int) { charged += n }
	type step struct {
		from, to uint64
		saved    bool
	}
	var steps []step
	fileSize := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	ch, _, err := chain.Open(path, chain.Options{SyncInterval: time.Hour, BeforeWrite: func(w chain.Write) error {
		before, had := fileSize(), st.hasNext
		if err := st.save(w); err != nil {
			return err
		}
		if fileSize() != before {
			t.Errorf("write of events %d..%d: the file grew while the state was saved", w.From, w.To-1)
		}
		steps = append(steps, step{w.From, w.To, had})
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	appendState := func(kind chain.Kind, s string) {
		t.Helper()
		state := savedState{hasState: true, state: []byte(s)}
		if _, err := ch.AppendNoting(kind, "op", []byte(`{}`), func(seq uint64) { st.recorded(seq, state) }); err != nil {
			t.Fatal(err)
		}
	}
	slots := func() [2]actordir.StateSlot {
		t.Helper()
		slots, err := actordir.ReadStateSlots(dir, 1024)
		if err != nil {
			t.Fatal(err)
		}
		return slots
	}
	slotIs := func(i int, data string, seq, durable uint64) {
		t.Helper()
		sl := slots()[i]
		if !sl.Present || sl.Err != nil || string(sl.Saved.Data) != data || sl.Saved.Seq != seq || sl.Saved.Durable != durable {
			t.Fatalf("slot %d = %+v (%v), want %q for event %d, durable %d", i, sl.Saved, sl.Err, data, seq, durable)
		}
	}
	eventsInFile := func() uint64 {
		t.Helper()
		rep, err := chain.VerifyFile(path)
		if err != nil || !rep.OK() {
			t.Fatalf("%+v, %v", rep, err)
		}
		return rep.Length
	}

	// 0: a lifecycle event is written at once; it records no state.
	if _, err := ch.Append(chain.KindActorStart, "start", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if sl := slots(); sl[0].Present || sl[1].Present {
		t.Fatal("a slot was written for an event that records no state")
	}
	// 1: init's state, a lifecycle event too: saved in slot a first.
	// The chain recorded no state before, so no slot needed the
	// ActorStart durable: the slot says the chain is durable to 0, and
	// the InitResult's fsync covers both events.
	appendState(chain.KindInitResult, "one")
	slotIs(0, "one", 1, 0)
	if n := eventsInFile(); n != 2 {
		t.Fatalf("%d events in the file, want 2", n)
	}
	// 2..4: two ticks change the state and a log follows, all buffered
	// (group commit): nothing is saved, nothing written.
	appendState(chain.KindTick, "two")
	appendState(chain.KindTick, "three")
	if _, err := ch.Append(chain.KindLog, "log", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// The write they will take is charged as they are appended, as the
	// largest state it may save: 3 bytes for "one", 5 for the write of
	// "two" and "three".
	if sl := slots(); sl[1].Present || eventsInFile() != 2 || charged != 3+5 {
		t.Fatalf("slot b %+v, %d events in the file, %d bytes charged before the write", sl[1], eventsInFile(), charged)
	}
	// The write of 2..4 saves only the newest state, "three", recorded
	// by event 3, in slot b; the write begins at 2, durable already.
	if err := ch.Sync(); err != nil {
		t.Fatal(err)
	}
	slotIs(1, "three", 3, 2)
	slotIs(0, "one", 1, 0)
	if charged != 3+5 {
		t.Fatalf("charged %d bytes, want the two slots written (8)", charged)
	}
	// A shorter state after a longer one in one write costs no more.
	appendState(chain.KindTick, "much longer")
	appendState(chain.KindTick, "short")
	if err := ch.Sync(); err != nil {
		t.Fatal(err)
	}
	slotIs(0, "short", 6, 5)
	if charged != 3+5+11 {
		t.Fatalf("charged %d bytes, want 19", charged)
	}
	// 7: a write that is not synced (reading the events flushes the
	// buffer without a group commit)...
	appendState(chain.KindTick, "four")
	if err := ch.Events(func(chain.Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	slotIs(1, "four", 7, 7)
	if d := ch.Durable(); d != 7 {
		t.Fatalf("Durable = %d, want 7: event 7 is written, not synced", d)
	}
	// 8: ...so the next save, which overwrites slot a, syncs it first:
	// slot a's state is no longer needed once event 7 is durable.
	appendState(chain.KindTick, "five")
	if err := ch.Sync(); err != nil {
		t.Fatal(err)
	}
	slotIs(0, "five", 8, 8)
	// A write that carries no new state saves nothing.
	if _, err := ch.Append(chain.KindLog, "log", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := ch.Sync(); err != nil {
		t.Fatal(err)
	}
	slotIs(0, "five", 8, 8)
	slotIs(1, "four", 7, 7)
	want := []step{{0, 1, false}, {1, 2, true}, {2, 5, true}, {5, 7, true}, {7, 8, true}, {8, 9, true}, {9, 10, false}}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Fatalf("writes %v, want %v", steps, want)
	}
}

// TestResumeFromTheStateTheChainRecordsLast covers every way a crash can
// leave the slots and the chain, and what a start makes of it.
func TestResumeFromTheStateTheChainRecordsLast(t *testing.T) {
	rec := func(s string) string {
		return fmt.Sprintf(`{"ok":true,"hasState":true,"stateSha256":%q}`, digestHex([]byte(s)))
	}
	slot := func(s string, seq, durable uint64) *actordir.SavedState {
		return &actordir.SavedState{State: actordir.State{HasState: true, Data: []byte(s)}, Seq: seq, Durable: durable}
	}
	type ev struct {
		kind chain.Kind
		data string
	}
	start := ev{chain.KindActorStart, `{}`}
	tests := map[string]struct {
		events  []ev
		a, b    *actordir.SavedState
		tornB   bool
		legacy  *string
		resumed string // "" starts from the initial state
		event   int64  // the seq of the recording event, -1 for none
		cutTo   uint64 // the length the chain is cut back to; 0 for none
		first   *int   // where the first state goes, when none is resumed
		wantErr string
	}{
		"nothing saved": {events: []ev{start}, event: -1},
		"init's state recorded": {events: []ev{start, {chain.KindInitResult, rec("s1")}},
			a: slot("s1", 1, 1), resumed: "s1", event: 1},
		"a tick saved, not recorded": {events: []ev{start, {chain.KindInitResult, rec("s1")}},
			a: slot("s1", 1, 1), b: slot("s2", 2, 2), resumed: "s1", event: 1},
		"a tick saved and recorded": {events: []ev{start, {chain.KindInitResult, rec("s1")}, {chain.KindTick, rec("s2")}},
			a: slot("s1", 1, 1), b: slot("s2", 2, 2), resumed: "s2", event: 2},
		"the slot being written was torn": {events: []ev{start, {chain.KindInitResult, rec("s1")}, {chain.KindTick, rec("s2")}},
			b: slot("s2", 2, 2), tornB: false, a: nil, resumed: "s2", event: 2},
		"unchanged ticks after the state": {events: []ev{start, {chain.KindInitResult, rec("s1")}, {chain.KindTick, rec("s1")}, {chain.KindLog, `{}`}},
			a: slot("s1", 1, 1), resumed: "s1", event: 2},
		"a failed init hides nothing": {events: []ev{start, {chain.KindInitResult, rec("s1")}, start, {chain.KindInitResult, `{"ok":false,"error":"no"}`}},
			a: slot("s1", 1, 1), resumed: "s1", event: 1},
		"first state saved, never recorded": {events: []ev{start, {chain.KindInitCall, `{"hasState":false}`}},
			a: slot("s1", 2, 2), event: -1, first: ptr(0)},
		"first state saved in slot b, never recorded": {events: []ev{start, {chain.KindInitCall, `{"hasState":false}`}},
			a: slot("s0", 1, 1), b: slot("s1", 2, 2), event: -1, first: ptr(1)},
		"the recorded state is in no slot": {events: []ev{start, {chain.KindInitResult, rec("s1")}, {chain.KindTick, rec("s2")}},
			a: slot("s1", 1, 1), b: slot("s3", 3, 3),
			wantErr: "the chain records state sha256:" + digestHex([]byte("s2"))[:12] + " at event 2 as the actor's last state, but no saved state holds it"},
		// A write of events 2..4 carried states s2, s3 and s4: s4 was
		// saved (slot b, for event 4, the write beginning at 2), then the
		// write was cut short after event 3. Events 2 and 3 were never
		// durable: cut off, and the run resumes s1.
		"a write cut short after an intermediate state": {events: []ev{start, {chain.KindInitResult, rec("s1")}, {chain.KindTick, rec("s2")}, {chain.KindTick, rec("s3")}},
			a: slot("s1", 1, 1), b: slot("s4", 4, 2), resumed: "s1", event: 1, cutTo: 2},
		"a write cut short after its first state, the chain recording none before": {events: []ev{start, {chain.KindLog, `{}`}, {chain.KindTick, rec("s2")}},
			b: slot("s3", 3, 2), event: -1, cutTo: 2, first: ptr(1)},
		"a write cut short after its newest state is no torn write": {events: []ev{start, {chain.KindInitResult, rec("s1")}, {chain.KindTick, rec("s2")}, {chain.KindTick, rec("s3")}},
			a: slot("s1", 1, 1), b: slot("s3", 3, 2), resumed: "s3", event: 3},
		"a write cut short that began before what was durable is damage": {events: []ev{start, {chain.KindInitResult, rec("s1")}, {chain.KindTick, rec("s2")}, {chain.KindTick, rec("s3")}},
			a: slot("s1", 1, 3), b: slot("s4", 4, 2), wantErr: "below its floor 3"},
		"a slot naming an event the chain holds is no torn write": {events: []ev{start, {chain.KindInitResult, rec("s1")}, {chain.KindTick, rec("s2")}, {chain.KindLog, `{}`}, {chain.KindLog, `{}`}},
			a: slot("s1", 1, 1), b: slot("s4", 3, 2), wantErr: "no saved state holds it"},
		"the recorded state's slot is torn": {events: []ev{start, {chain.KindInitResult, rec("s1")}},
			a: slot("s1", 1, 1), tornB: true, resumed: "s1", event: 1},
		"the only slot is torn": {events: []ev{start, {chain.KindInitResult, rec("s1")}},
			tornB: true, wantErr: "state.b is corrupt"},
		"a slot saved later than its event cannot be its state": {events: []ev{start, {chain.KindInitResult, rec("s1")}},
			a: slot("s1", 5, 2), wantErr: "no saved state holds it"},
		"v0.1.0's state, recorded": {events: []ev{start, {chain.KindInitResult, rec("old")}},
			legacy: ptr("old"), resumed: "old", event: 1},
		"v0.1.0's state, ahead of its chain": {events: []ev{start, {chain.KindInitResult, rec("old")}},
			legacy: ptr("newer"), resumed: "newer", event: -1},
		"v0.1.0's state beside a slot not yet recorded": {events: []ev{start, {chain.KindInitResult, rec("old")}},
			legacy: ptr("old"), a: slot("new", 2, 2), resumed: "old", event: 1},
		"v0.1.0's state once a slot is recorded": {events: []ev{start, {chain.KindInitResult, rec("old")}, {chain.KindInitResult, rec("new")}},
			legacy: ptr("old"), a: slot("new", 2, 2), resumed: "new", event: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ch, _, err := chain.Open(actordir.ChainPath(dir), chain.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tc.events {
				if _, err := ch.Append(e.kind, "op", []byte(e.data)); err != nil {
					t.Fatal(err)
				}
			}
			ch.Close()
			for i, s := range []*actordir.SavedState{tc.a, tc.b} {
				if s != nil {
					if err := actordir.WriteStateSlot(dir, i, *s); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tc.tornB {
				if err := os.WriteFile(filepath.Join(dir, actordir.StateSlotFiles[1]), []byte("TRSTATE2\x01torn"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.legacy != nil {
				if err := actordir.WriteLegacyState(dir, actordir.State{HasState: true, Data: []byte(*tc.legacy)}); err != nil {
					t.Fatal(err)
				}
			}
			states, err := loadStates(dir, 1024)
			if err != nil {
				t.Fatal(err)
			}
			// As a start opens the directory.
			tracker := stateTracker{boundary: states.boundary()}
			ch, _, err = chain.Open(actordir.ChainPath(dir), chain.Options{Floor: states.floor(), Observe: tracker.observe})
			if err != nil {
				t.Fatal(err)
			}
			r, store, cut, err := settleStates(ch, states, &tracker)
			_, length := ch.Head()
			if cerr := ch.Close(); cerr != nil {
				t.Fatal(cerr)
			}
			switch rep, verr := chain.VerifyFile(actordir.ChainPath(dir)); {
			case verr != nil || !rep.OK() || rep.Length != length:
				t.Fatalf("the chain after the start: %+v, %v; want %d events", rep, verr, length)
			case tc.cutTo == 0 && (cut != nil || length != uint64(len(tc.events))):
				t.Fatalf("cut %+v: the chain is %d long, want it uncut (%d)", cut, length, len(tc.events))
			case tc.cutTo != 0 && (cut == nil || cut.from != tc.cutTo || cut.to != uint64(len(tc.events)) || length != tc.cutTo):
				t.Fatalf("cut %+v: the chain is %d long, want it cut back to %d", cut, length, tc.cutTo)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("pick = %+v, %v; want an error saying %q", r, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tc.resumed != "") != r.ok || string(r.state.state) != tc.resumed {
				t.Fatalf("resumed %v %q, want %q", r.ok, r.state.state, tc.resumed)
			}
			if tc.event < 0 && r.event != nil || tc.event >= 0 && (r.event == nil || *r.event != uint64(tc.event)) {
				t.Fatalf("recording event %v, want %d", r.event, tc.event)
			}
			if r.ok && r.event == nil && r.note == "" {
				t.Fatal("a state the chain does not record was resumed without a note")
			}
			if store.legacy != (tc.legacy != nil) {
				t.Fatalf("store %+v", store)
			}
			if tc.first != nil && (store.cur != -1 || store.first != *tc.first) {
				t.Fatalf("the first state goes in slot %d (cur %d), want %d", store.first, store.cur, *tc.first)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// copyDir copies the flat directory src into a new temporary one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			_, err = io.Copy(out, in)
			out.Close()
		}
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestResumesADirectoryOfV010: an actor directory that Troupe v0.1.0 wrote
// (identity and state without versions) starts as the same actor, from its
// saved state, and its chain goes on.
func TestResumesADirectoryOfV010(t *testing.T) {
	e, _ := newTestEngine(t)
	dir := copyDir(t, "../actordir/testdata/v0.1.0")
	before, err := chain.VerifyFile(actordir.ChainPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, e, ActorConfig{Name: "counter", Namespace: "default", Component: compile(t, e, "counter"), Dir: dir})
	if a.ID() != "5f0b7a52-6c1e-4f7e-9a3b-2f1d6a9e8c41" {
		t.Fatalf("resumed as %s", a.ID())
	}
	if got := string(a.State()); got != "state of v0.1.0:xx" {
		t.Fatalf("state %q, want the saved one with one more x", got)
	}
	if err := a.Stop(context.Background(), "test over"); err != nil {
		t.Fatal(err)
	}
	after, err := chain.VerifyFile(actordir.ChainPath(dir))
	if err != nil || after.Length <= before.Length {
		t.Fatalf("the chain did not go on: %d events before, %+v, %v after", before.Length, after, err)
	}
	// What this run saved carries the current versions: a slot. The state
	// file of v0.1.0 goes once a slot's state is durably recorded: at the
	// next state saved.
	raw, _ := os.ReadFile(filepath.Join(dir, actordir.StateSlotFiles[0]))
	if !strings.HasPrefix(string(raw), "TRSTATE2") {
		t.Errorf("state saved as %q", raw[:min(8, len(raw))])
	}
	a = start(t, e, ActorConfig{Name: "counter", Namespace: "default", Component: compile(t, e, "counter"), Dir: dir})
	if got := string(a.State()); got != "state of v0.1.0:xxx" {
		t.Fatalf("second run: state %q", got)
	}
	if err := a.Stop(context.Background(), "test over"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, actordir.StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state file of v0.1.0 is still there: %v", err)
	}
}

// TestUnknownVersionRefusesToStart: an identity or state of a newer format
// stops the start with an error naming the file, and is left as it was.
func TestUnknownVersionRefusesToStart(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	tests := map[string]struct {
		file    string
		content string
	}{
		"identity": {file: actordir.IdentityFile, content: `{"version":2,"id":"5f0b7a52-6c1e-4f7e-9a3b-2f1d6a9e8c41"}`},
		"state":    {file: actordir.StateFile, content: "TRSTATE2 a state of the future"},
		"slot":     {file: actordir.StateSlotFiles[1], content: "TRSTATE3 a state of the future"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, "../actordir/testdata/v0.1.0")
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: dir})
			var ve *actordir.VersionError
			if a != nil || !errors.As(err, &ve) || ve.Path != path {
				t.Fatalf("Start = %v, %v; want a *VersionError for %s", a, err, path)
			}
			if raw, _ := os.ReadFile(path); string(raw) != tc.content {
				t.Fatalf("the file was rewritten: %q", raw)
			}
		})
	}
}

// TestTheLastStateIsSavedWhenTheRunEnds: the run ends right after its
// state changed, usually before the next group commit (20 ms) would have
// saved it; however it ends, the end writes the chain and so saves the
// state first: the chain's last state is in a slot and the next start
// resumes it, with no cut. (TestBeforeWriteRunsOnEveryPath in package
// chain shows each write path runs the save, timing aside.)
func TestTheLastStateIsSavedWhenTheRunEnds(t *testing.T) {
	tests := map[string]struct {
		last  string // the last message sent: how the run ends
		phase Phase
	}{
		"stopped":             {phase: PhaseStopped},
		"its handler failed":  {last: "E", phase: PhaseFailed},
		"its handler trapped": {last: "T", phase: PhaseFailed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, _ := newTestEngine(t)
			ctx := context.Background()
			dir := t.TempDir()
			a := startMessenger(t, e, "counter", ActorConfig{Dir: dir})
			for range 5 {
				if err := e.Send(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte("i")}); err != nil {
					t.Fatal(err)
				}
			}
			if resp, err := e.Request(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte("g")}); err != nil || counterOf(t, resp) != 5 {
				t.Fatalf("count: %v, %v", resp, err)
			}
			if tc.last != "" {
				if err := e.Send(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte(tc.last)}); err != nil {
					t.Fatal(err)
				}
				select {
				case <-a.Done():
				case <-time.After(30 * time.Second):
					t.Fatal("the actor did not fail within 30s")
				}
			}
			if err := a.Stop(ctx, "test over"); err != nil {
				t.Fatal(err)
			}
			if a.Phase() != tc.phase {
				t.Fatalf("the run ended %s, want %s", a.Phase(), tc.phase)
			}
			s, ok, err := readState(dir, 1024)
			if err != nil || !ok || counterValue(s.state) != 5 {
				t.Fatalf("the saved state the chain records last: %v %v, %v; want the counter at 5", s, ok, err)
			}
			b := startMessenger(t, e, "counter", ActorConfig{Dir: dir})
			if got := counterValue(b.State()); got != 5 {
				t.Fatalf("the next run resumed %d, want 5", got)
			}
		})
	}
}
