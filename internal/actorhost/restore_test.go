package actorhost

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
)

// lastState returns the seq and record of the last state-recording event
// of evs, as the archive's reader finds it.
func lastState(t *testing.T, evs []chain.Event) (uint64, chain.StateRecord) {
	t.Helper()
	var seq uint64
	var rec chain.StateRecord
	found := false
	for i := range evs {
		r, ok, err := chain.RecordedState(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			seq, rec, found = evs[i].Seq, r, true
		}
	}
	if !found {
		t.Fatal("no event records a state")
	}
	return seq, rec
}

// segmentOf decodes the data of a chain's first event, a SegmentStart.
func segmentOf(t *testing.T, evs []chain.Event) segmentData {
	t.Helper()
	if evs[0].Kind != chain.KindSegmentStart {
		t.Fatalf("first event is %s, want a SegmentStart", evs[0].Kind)
	}
	var seg segmentData
	if err := json.Unmarshal(evs[0].Data, &seg); err != nil {
		t.Fatal(err)
	}
	return seg
}

// TestRestoredStateResumesAsARestartDoes: a run that continues a chain
// with the state the archive restored starts from that state exactly as a
// restart on the node that saved it does, and its SegmentStart says what
// was restored.
func TestRestoredStateResumesAsARestartDoes(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	dirA := t.TempDir()
	cfgA := ActorConfig{ID: "mover", Name: "counter", Component: c, Dir: dirA, InitialState: []byte("init"), TickInterval: -1}
	first := start(t, e, cfgA)
	if _, err := first.Call(context.Background(), "loop-time", 1); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(context.Background(), "moved"); err != nil {
		t.Fatal(err)
	}
	evs := fileEvents(t, dirA)
	head, length := evs[len(evs)-1].Hash, uint64(len(evs))
	seq, rec := lastState(t, evs)
	saved := bytes.Clone(first.State())

	// The reference: a restart on node A.
	again := start(t, e, cfgA)
	want := string(again.State())
	if err := again.Stop(context.Background(), "over"); err != nil {
		t.Fatal(err)
	}

	dirB := t.TempDir()
	restored := &RestoredState{Epoch: 3, Event: &seq, HasState: rec.HasState, State: saved, Sha256: rec.Sha256}
	b := start(t, e, ActorConfig{ID: "mover", Name: "counter", Component: c, Dir: dirB, InitialState: []byte("init"), TickInterval: -1,
		Continue: &ChainLink{Head: head, Length: length, Node: "node-a", Restored: restored}})
	if got := string(b.State()); got != want {
		t.Fatalf("state after the restore %q, after a restart on the same node %q", got, want)
	}
	bevs := events(t, b)
	if bevs[0].Seq != length || bevs[0].Parent != head {
		t.Fatalf("segment starts at seq %d after %s, want %d after %s", bevs[0].Seq, bevs[0].Parent.Short(), length, head.Short())
	}
	seg := segmentOf(t, bevs)
	if !seg.StateRestored || seg.StateLost || seg.Gap != nil || seg.Archive == nil {
		t.Fatalf("SegmentStart %+v: want restored, not lost, no gap", seg)
	}
	if a := seg.Archive; a.Epoch != 3 || a.Head != head.String() || a.Length != length || a.StateEvent == nil || *a.StateEvent != seq ||
		!a.HasState || a.StateSha256 != rec.Sha256 || a.StateBytes == nil || *a.StateBytes != len(saved) {
		t.Errorf("SegmentStart's archive %+v, want epoch 3, head %s/%d, state of event %d sha256 %s", a, head.Short(), length, seq, rec.Sha256)
	}
	// ActorStart says resumed; ActorRestart names the state and its event.
	var startData lifecycleData
	if err := json.Unmarshal(bevs[1].Data, &startData); err != nil || bevs[1].Kind != chain.KindActorStart || !startData.Resumed {
		t.Fatalf("second event %s %s, want a resumed ActorStart", bevs[1].Kind, bevs[1].Data)
	}
	var rd restartData
	if err := json.Unmarshal(bevs[2].Data, &rd); err != nil || bevs[2].Kind != chain.KindRestart {
		t.Fatalf("third event %s %s, want ActorRestart", bevs[2].Kind, bevs[2].Data)
	}
	if rd.StateEvent == nil || *rd.StateEvent != seq || rd.Sha256 != rec.Sha256 || !strings.Contains(rd.Reason, "archive") {
		t.Errorf("ActorRestart %+v, want the state of event %d from the archive", rd, seq)
	}
	// The restored state is saved on the new node like any other: a
	// restart there resumes from it without the archive.
	if err := b.Stop(context.Background(), "over"); err != nil {
		t.Fatal(err)
	}
	b2 := start(t, e, ActorConfig{ID: "mover", Name: "counter", Component: c, Dir: dirB, InitialState: []byte("init"), TickInterval: -1})
	if got := string(b2.State()); got != want+"x" {
		t.Errorf("restart on node B: state %q, want %q", got, want+"x")
	}
}

// TestRestoreGapAndNoState: the SegmentStart names the events lost
// between the archive's head and the head the cluster knew; an archive
// that holds no state event hands init the initial state.
func TestRestoreGapAndNoState(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	first := start(t, e, ActorConfig{ID: "mover", Name: "counter", Component: c, InitialState: []byte("s"), TickInterval: -1})
	evs := events(t, first)
	head, length := evs[len(evs)-1].Hash, uint64(len(evs))
	seq, rec := lastState(t, evs)
	lost := &ChainLink{Head: chain.Hash{7}, Length: length + 40, Node: "node-a"}

	tests := map[string]struct {
		restored  *RestoredState
		lost      *ChainLink
		wantState string
		wantSeg   func(segmentData) bool
	}{
		"a gap after the restored state": {
			restored:  &RestoredState{Epoch: 1, Event: &seq, HasState: true, State: first.State(), Sha256: rec.Sha256},
			lost:      lost,
			wantState: "sxx",
			wantSeg: func(s segmentData) bool {
				return s.StateRestored && !s.StateLost && s.Gap != nil && s.Gap.From == length && s.Gap.To == length+40 &&
					s.Gap.LostHead == lost.Head.String() && s.Gap.Node == "node-a"
			},
		},
		"no state recorded, no gap": {
			restored:  &RestoredState{Epoch: 1},
			wantState: "initx",
			wantSeg: func(s segmentData) bool {
				return !s.StateRestored && !s.StateLost && s.Gap == nil && s.Archive != nil && s.Archive.StateEvent == nil
			},
		},
		"no state recorded and a gap: the state at the lost head is lost": {
			restored:  &RestoredState{Epoch: 1},
			lost:      lost,
			wantState: "initx",
			wantSeg:   func(s segmentData) bool { return !s.StateRestored && s.StateLost && s.Gap != nil },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := start(t, e, ActorConfig{ID: "mover", Name: "counter", Component: c, InitialState: []byte("init"), TickInterval: -1,
				Continue: &ChainLink{Head: head, Length: length, Node: "node-a", Restored: tc.restored, Lost: tc.lost}})
			if got := string(a.State()); got != tc.wantState {
				t.Errorf("state %q, want %q", got, tc.wantState)
			}
			if seg := segmentOf(t, events(t, a)); !tc.wantSeg(seg) {
				t.Errorf("SegmentStart %+v (archive %+v, gap %+v)", seg, seg.Archive, seg.Gap)
			}
		})
	}
}

// TestRestoredStateIsRefusedWhenItIsNotWhatItSays: a restored state is
// input from the network: one whose digest, event or size does not fit
// is refused before anything is written.
func TestRestoredStateIsRefusedWhenItIsNotWhatItSays(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	head := chain.Hash{1, 2, 3}
	good := []byte("state")
	sum := digestHex(good)
	ev := func(n uint64) *uint64 { return &n }
	tests := map[string]struct {
		link    ChainLink
		wantErr string
	}{
		"digest does not match": {
			link:    ChainLink{Head: head, Length: 10, Restored: &RestoredState{Event: ev(5), HasState: true, State: []byte("other"), Sha256: sum}},
			wantErr: "digest",
		},
		"no digest": {
			link:    ChainLink{Head: head, Length: 10, Restored: &RestoredState{Event: ev(5), HasState: true, State: good}},
			wantErr: "digest",
		},
		"event at the head": {
			link:    ChainLink{Head: head, Length: 10, Restored: &RestoredState{Event: ev(10), HasState: true, State: good, Sha256: sum}},
			wantErr: "not before the head",
		},
		"a state without its event": {
			link:    ChainLink{Head: head, Length: 10, Restored: &RestoredState{HasState: true, State: good, Sha256: sum}},
			wantErr: "without the event",
		},
		"no state, but bytes": {
			link:    ChainLink{Head: head, Length: 10, Restored: &RestoredState{Event: ev(5), State: good}},
			wantErr: "says it has none",
		},
		"larger than the actor may hold": {
			link:    ChainLink{Head: head, Length: 10, Restored: &RestoredState{Event: ev(5), HasState: true, State: make([]byte, 2048), Sha256: digestHex(make([]byte, 2048))}},
			wantErr: "more than the actor's limit",
		},
		"restored for no head": {
			link:    ChainLink{Restored: &RestoredState{}},
			wantErr: "no head",
		},
		"the lost head is the one continued": {
			link:    ChainLink{Head: head, Length: 10, Restored: &RestoredState{}, Lost: &ChainLink{Head: head, Length: 10}},
			wantErr: "lost head",
		},
		"a lost head of no length": {
			link:    ChainLink{Head: head, Length: 10, Lost: &ChainLink{Head: head}},
			wantErr: "lost head",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "actor")
			link := tc.link
			a, err := e.Start(context.Background(), ActorConfig{ID: "mover", Name: "counter", Component: c, Dir: dir,
				InitialState: []byte("init"), MaxStateBytes: 1024, Continue: &link})
			if a != nil {
				_ = a.Stop(context.Background(), "over")
				t.Fatalf("started: %v", err)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the refused start touched its directory: %v", err)
			}
		})
	}
}

// TestRestoredStateForAChainThatGoesOnIsRefused: the engine restores only
// into a segment it starts; a directory whose chain already reaches the
// head has states of its own.
func TestRestoredStateForAChainThatGoesOnIsRefused(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	dir := t.TempDir()
	cfg := ActorConfig{ID: "mover", Name: "counter", Component: c, Dir: dir, InitialState: []byte("init"), TickInterval: -1}
	first := start(t, e, cfg)
	if err := first.Stop(context.Background(), "over"); err != nil {
		t.Fatal(err)
	}
	evs := fileEvents(t, dir)
	seq, rec := lastState(t, evs)
	head, length := evs[len(evs)-1].Hash, uint64(len(evs))
	cfg.Continue = &ChainLink{Head: head, Length: length,
		Restored: &RestoredState{Event: &seq, HasState: true, State: []byte("initx"), Sha256: rec.Sha256}}
	a, err := e.Start(context.Background(), cfg)
	if a != nil || err == nil || !strings.Contains(err.Error(), "already holds") {
		if a != nil {
			_ = a.Stop(context.Background(), "over")
		}
		t.Fatalf("start = %v, want a refusal", err)
	}
	if got := fileEvents(t, dir); len(got) != len(evs) {
		t.Errorf("the refused start wrote %d events", len(got)-len(evs))
	}
}
