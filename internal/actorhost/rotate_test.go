package actorhost

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
)

// A rotation while the actor ticks ends the old file at a consistent
// archive point (its state is the one the file records last), starts
// chain.log with a SegmentStart that continues that head and records that
// state, saves the state beside the rotated file, and counts the new file
// in the disk budget.
func TestRotatePointWhileTicking(t *testing.T) {
	e, _ := newTestEngine(t)
	dir := t.TempDir()
	a := start(t, e, ActorConfig{Name: "ticker", Component: compile(t, e, "tick"), Dir: dir, InitialState: tickState('c'),
		TickInterval: limits.MinTickInterval})
	for i := range 3 {
		waitFor(t, "a tick", func() bool { return a.Ticks() > uint64(2*i) })
		p, err := a.RotatePoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !p.Rotated || p.Path != actordir.RotatedChainPath(dir, p.End.Length) {
			t.Fatalf("rotation %d: point %+v", i, p)
		}
		if fi, err := os.Stat(p.Path); err != nil || fi.Size() != p.Offset {
			t.Fatalf("rotation %d: the rotated file: %v (offset %d)", i, err, p.Offset)
		}
		if i == 0 {
			checkPoint(t, p) // the first rotated file begins at seq 0
		}
		saved, err := actordir.ReadRotatedState(actordir.RotatedStatePath(dir, p.End.Length), limits.DefaultMaxStateBytes)
		if err != nil || saved.HasState != p.HasState || string(saved.Data) != string(p.State) {
			t.Fatalf("rotation %d: the state beside the file is %+v (%v), the point's %x", i, saved, err, p.State)
		}
		first := readFirst(t, filepath.Join(dir, chain.FileName))
		rec, ok := rotationState(first.Data)
		if first.Kind != chain.KindSegmentStart || first.Seq != p.End.Length || first.Parent != p.End.Head || !ok ||
			!rec.matches(actordir.State{HasState: p.HasState, Data: p.State}) {
			t.Fatalf("rotation %d: chain.log begins with %s at %d (%s)", i, first.Kind, first.Seq, first.Data)
		}
		if got, want := a.budget.ChainBytes(), a.Chain().Size(); got > want || got > 4<<10 {
			t.Fatalf("rotation %d: the budget counts %d bytes, the file has %d", i, got, want)
		}
	}
	rotated, orphans, err := actordir.ListRotated(dir)
	if err != nil || len(rotated) != 3 || len(orphans) != 0 {
		t.Fatalf("rotated %+v, orphans %v, %v", rotated, orphans, err)
	}
	if _, err := chain.VerifyFile(filepath.Join(dir, chain.FileName)); err != nil {
		t.Fatal(err)
	}
}

// A run whose last state event is the SegmentStart of a rotation resumes
// that state on the node: the new file alone says what it is, and a slot
// holds it. Were the SegmentStart not a state event, the start would find
// no state recorded and init would get the initial state.
func TestRestartResumesTheStateARotationRecorded(t *testing.T) {
	e, _ := newTestEngine(t)
	dir := t.TempDir()
	cfg := ActorConfig{Name: "ticker", Component: compile(t, e, "tick"), Dir: dir, InitialState: tickState('c'),
		TickInterval: limits.MinTickInterval}
	a := start(t, e, cfg)
	waitFor(t, "3 ticks", func() bool { return a.Ticks() >= 3 })
	mustStop(t, a)
	want := a.State()
	if tickCounter(want) < 3 {
		t.Fatalf("state %x", want)
	}
	// A run without ticks: init records the state, the rotation records
	// it again, and nothing after.
	cfg.TickInterval = -1
	b := start(t, e, cfg)
	p, err := b.RotatePoint(context.Background())
	if err != nil || !p.Rotated {
		t.Fatalf("rotating: %+v, %v", p, err)
	}
	mustStop(t, b)
	c := start(t, e, cfg)
	if got := c.State(); string(got) != string(want) {
		t.Fatalf("resumed %x, want %x", got, want)
	}
	var restart struct {
		StateEvent *uint64 `json:"stateEvent"`
	}
	for _, ev := range events(t, c) {
		if ev.Kind == chain.KindRestart {
			if err := json.Unmarshal(ev.Data, &restart); err != nil {
				t.Fatal(err)
			}
		}
	}
	if restart.StateEvent == nil || *restart.StateEvent != p.End.Length {
		t.Fatalf("the restart names state event %v, want the rotation's SegmentStart %d", restart.StateEvent, p.End.Length)
	}
}

func mustStop(t *testing.T, a *Actor) {
	t.Helper()
	if err := a.Stop(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
}

func readFirst(t *testing.T, path string) chain.Event {
	t.Helper()
	var first chain.Event
	found := false
	err := chain.ReadFile(path, func(e chain.Event) error {
		if !found {
			first, found = e, true
			first.Data = append([]byte(nil), e.Data...)
		}
		return nil
	})
	if err != nil || !found {
		t.Fatalf("reading %s: %v", path, err)
	}
	return first
}

// A start on a directory where a crash interrupted a rotation before the
// new file took chain.log's name finds the old chain.log whole, removes
// what the rotation had made (the state beside the rotated name, the
// rotated name itself when it is only a second name of chain.log, the new
// file), and resumes the state.
func TestStartRecoversAnInterruptedRotation(t *testing.T) {
	for name, crash := range map[string]func(t *testing.T, dir string, l uint64){
		"state saved": func(t *testing.T, dir string, l uint64) {
			mustOK(t, actordir.WriteRotatedState(dir, l, actordir.SavedState{State: actordir.State{HasState: true, Data: []byte("x")}, Seq: l, Durable: l}))
		},
		"new file written": func(t *testing.T, dir string, l uint64) {
			mustOK(t, actordir.WriteRotatedState(dir, l, actordir.SavedState{State: actordir.State{HasState: true, Data: []byte("x")}, Seq: l, Durable: l}))
			mustOK(t, os.WriteFile(filepath.Join(dir, chain.FileName+chain.NextSuffix), []byte(chain.Magic), 0o640))
		},
		"linked, not renamed": func(t *testing.T, dir string, l uint64) {
			mustOK(t, actordir.WriteRotatedState(dir, l, actordir.SavedState{State: actordir.State{HasState: true, Data: []byte("x")}, Seq: l, Durable: l}))
			mustOK(t, os.WriteFile(filepath.Join(dir, chain.FileName+chain.NextSuffix), []byte(chain.Magic), 0o640))
			mustOK(t, os.Link(filepath.Join(dir, chain.FileName), actordir.RotatedChainPath(dir, l)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			e, _ := newTestEngine(t)
			dir := t.TempDir()
			cfg := ActorConfig{Name: "ticker", Component: compile(t, e, "tick"), Dir: dir, InitialState: tickState('c'),
				TickInterval: limits.MinTickInterval}
			a := start(t, e, cfg)
			waitFor(t, "2 ticks", func() bool { return a.Ticks() >= 2 })
			mustStop(t, a)
			_, l := a.Head()
			crash(t, dir, l)
			b := start(t, e, cfg)
			if got, want := tickCounter(b.State()), tickCounter(a.State()); got != want {
				t.Fatalf("resumed %d ticks, want %d", got, want)
			}
			rotated, orphans, err := actordir.ListRotated(dir)
			if err != nil || len(rotated)+len(orphans) != 0 {
				t.Fatalf("left: %+v %v %v", rotated, orphans, err)
			}
			if _, err := os.Stat(filepath.Join(dir, chain.FileName+chain.NextSuffix)); !os.IsNotExist(err) {
				t.Fatalf("the new file is still there: %v", err)
			}
			if first := readFirst(t, filepath.Join(dir, chain.FileName)); first.Seq != 0 {
				t.Fatalf("chain.log begins at %d", first.Seq)
			}
		})
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
