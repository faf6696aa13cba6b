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

// TestStatesAlternateSlots: each state is saved in the slot that does not
// hold the last recorded one, with the seq of the event that records it
// and how far the chain was durable; the slot is overwritten only once the
// other's event is durable, with no fsync of the chain when group commit
// made it so already.
func TestStatesAlternateSlots(t *testing.T) {
	dir := t.TempDir()
	ch, _, err := chain.Open(actordir.ChainPath(dir), chain.Options{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	st := stateStore{dir: dir, cur: -1}
	if _, err := ch.Append(chain.KindActorStart, "start", nil); err != nil {
		t.Fatal(err)
	}
	save := func(s string, kind chain.Kind) (slot int) {
		t.Helper()
		slot, err := st.save(ch, savedState{hasState: true, state: []byte(s)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.Append(kind, "op", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		_, n := ch.Head()
		st.recorded(slot, n-1)
		return slot
	}
	slotOf := func(i int) actordir.SavedState {
		t.Helper()
		slots, err := actordir.ReadStateSlots(dir, 1024)
		if err != nil || slots[i].Err != nil || !slots[i].Present {
			t.Fatalf("slot %d: %+v, %v", i, slots[i], err)
		}
		return slots[i].Saved
	}
	// init: slot a, recorded by event 1 (synced: a lifecycle event).
	if slot := save("one", chain.KindInitResult); slot != 0 {
		t.Fatalf("first state in slot %d", slot)
	}
	if s := slotOf(0); string(s.Data) != "one" || s.Seq != 1 || s.Durable != 1 {
		t.Fatalf("slot a = %+v", s)
	}
	// a tick: slot b; its event is buffered (group commit).
	if slot := save("two", chain.KindTick); slot != 1 {
		t.Fatalf("second state in slot %d", slot)
	}
	if s := slotOf(1); string(s.Data) != "two" || s.Seq != 2 || s.Durable != 2 {
		t.Fatalf("slot b = %+v", s)
	}
	if ch.Durable() != 2 {
		t.Fatalf("Durable = %d: the tick's event should still be buffered", ch.Durable())
	}
	// The next state overwrites slot a: first slot b's event is synced.
	if slot := save("three", chain.KindTick); slot != 0 {
		t.Fatalf("third state in slot %d", slot)
	}
	if s := slotOf(0); string(s.Data) != "three" || s.Seq != 3 || s.Durable != 3 {
		t.Fatalf("slot a = %+v; it must say the chain was durable through slot b's event", s)
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
			a: slot("s1", 2, 2), event: -1},
		"the recorded state is in no slot": {events: []ev{start, {chain.KindInitResult, rec("s1")}, {chain.KindTick, rec("s2")}},
			a: slot("s1", 1, 1), b: slot("s3", 3, 2),
			wantErr: "the chain records state sha256:" + digestHex([]byte("s2"))[:12] + " at event 2 as the actor's last state, but no saved state holds it"},
		"the recorded state's slot is torn": {events: []ev{start, {chain.KindInitResult, rec("s1")}},
			a: slot("s1", 1, 1), tornB: true, resumed: "s1", event: 1},
		"the only slot is torn": {events: []ev{start, {chain.KindInitResult, rec("s1")}},
			tornB: true, wantErr: "state.b is corrupt"},
		"a slot saved later than its event cannot be its state": {events: []ev{start, {chain.KindInitResult, rec("s1")}},
			a: slot("s1", 5, 1), wantErr: "no saved state holds it"},
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
			var tracker stateTracker
			if err := chain.ReadFile(actordir.ChainPath(dir), func(e chain.Event) error { tracker.observe(e); return nil }); err != nil {
				t.Fatal(err)
			}
			last, err := tracker.last()
			if err != nil {
				t.Fatal(err)
			}
			r, store, err := states.pick(last)
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
