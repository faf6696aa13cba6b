package actorhost

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
)

// tickState is the 16-byte state testdata/tick.wat works on: mode at +0, a
// tick counter at +4, the last now-ms at +8.
func tickState(mode byte) []byte {
	s := make([]byte, 16)
	s[0] = mode
	return s
}

func tickCounter(s []byte) uint32 {
	if len(s) < 16 {
		return 0
	}
	return binary.LittleEndian.Uint32(s[4:])
}

func tickNow(s []byte) uint64 { return binary.LittleEndian.Uint64(s[8:]) }

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func tickEvents(t testing.TB, evs []chain.Event) []tickData {
	t.Helper()
	var out []tickData
	for _, ev := range evs {
		if ev.Kind != chain.KindTick {
			continue
		}
		var d tickData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatalf("ActorTick data %q: %v", ev.Data, err)
		}
		out = append(out, d)
	}
	return out
}

func TestTicksSeeStateAndHostTimeAndSaveTheState(t *testing.T) {
	now := time.UnixMilli(1_700_000_123_456)
	e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	c := compile(t, e, "tick")
	if !c.Ticks() {
		t.Fatal("Component.Ticks() is false for a module exporting tick")
	}
	dir := t.TempDir()
	a := start(t, e, ActorConfig{Name: "ticker", Component: c, Dir: dir, InitialState: tickState('c'),
		TickInterval: limits.MinTickInterval})
	waitFor(t, "3 ticks", func() bool { return a.Ticks() >= 3 })
	if err := a.Stop(context.Background(), "test over"); err != nil {
		t.Fatal(err)
	}
	ticks, state := a.Ticks(), a.State()
	if got := tickCounter(state); uint64(got) != ticks {
		t.Errorf("state counts %d ticks, Ticks() = %d", got, ticks)
	}
	if got := tickNow(state); got != uint64(now.UnixMilli()) {
		t.Errorf("tick was handed now-ms %d, want the engine clock's %d", got, now.UnixMilli())
	}
	saved, ok, err := readState(dir, limits.DefaultMaxStateBytes)
	if err != nil || !ok || !bytes.Equal(saved.state, state) {
		t.Fatalf("saved state = %x (%v, %v), want %x", saved.state, ok, err, state)
	}
	evs := fileEvents(t, dir)
	tds := tickEvents(t, evs)
	if uint64(len(tds)) != ticks {
		t.Fatalf("%d ActorTick events for %d ticks that each changed the state", len(tds), ticks)
	}
	last := tds[len(tds)-1]
	if !last.OK || !last.StateChanged || last.Sha256 != digestHex(state) || last.Now != uint64(now.UnixMilli()) || last.Bytes == nil || *last.Bytes != 16 {
		t.Errorf("last ActorTick = %+v, want ok, changed, the final state's digest and now", last)
	}
	if _, err := chain.VerifyFile(dir + "/" + chain.FileName); err != nil {
		t.Errorf("chain does not verify: %v", err)
	}
}

// TestTickStatePersistsAcrossRuns: each run (a Start on the directory, as
// the host's restart and a new host process do) resumes from the state the
// last tick saved, and ticks on from there.
func TestTickStatePersistsAcrossRuns(t *testing.T) {
	e, _ := newTestEngine(t)
	dir := t.TempDir()
	saved := uint32(0)
	for run := range 3 {
		if run == 2 {
			e, _ = newTestEngine(t) // a new process
		}
		cfg := ActorConfig{Name: "ticker", Component: compile(t, e, "tick"), Dir: dir, InitialState: tickState('c'),
			TickInterval: limits.MinTickInterval}
		a := start(t, e, cfg)
		// init echoes the saved state, so the count goes on from there.
		if got := tickCounter(a.State()); got != saved {
			t.Fatalf("run %d starts from %d ticks, the last run saved %d", run, got, saved)
		}
		waitFor(t, "2 more ticks", func() bool { return tickCounter(a.State()) >= saved+2 })
		if err := a.Stop(context.Background(), "run over"); err != nil {
			t.Fatal(err)
		}
		saved = tickCounter(a.State())
	}
}

func TestIdleTicksDoNotGrowTheChain(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "tick")
	idle := start(t, e, ActorConfig{Name: "idle", Component: c, InitialState: tickState('i'), TickInterval: limits.MinTickInterval})
	_, before := idle.Head()
	waitFor(t, "5 idle ticks", func() bool { return idle.Ticks() >= 5 })
	if _, after := idle.Head(); after != before {
		t.Errorf("idle ticks grew the chain from %d to %d events", before, after)
	}

	// A tick that makes a runtime call is recorded, though the state stays.
	logger := start(t, e, ActorConfig{Name: "logger", Component: c, InitialState: tickState('l'), TickInterval: limits.MinTickInterval})
	waitFor(t, "3 logging ticks", func() bool { return logger.Ticks() >= 3 })
	tds := tickEvents(t, events(t, logger))
	if len(tds) < 3 {
		t.Fatalf("%d ActorTick events after 3 logging ticks", len(tds))
	}
	if d := tds[0]; !d.OK || d.StateChanged || d.Sha256 != digestHex(tickState('l')) {
		t.Errorf("ActorTick = %+v, want ok, unchanged, the state's digest", d)
	}
	// Every logging tick is a LogEvent then an ActorTick.
	evs := events(t, logger)
	for i, ev := range evs {
		if ev.Kind == chain.KindTick && evs[i-1].Kind != chain.KindLog {
			t.Fatalf("ActorTick at %d follows %s, want the tick's LogEvent", i, evs[i-1].Kind)
		}
	}
}

func TestTickReturningNoneSavesNone(t *testing.T) {
	e, _ := newTestEngine(t)
	dir := t.TempDir()
	a := start(t, e, ActorConfig{Name: "none", Component: compile(t, e, "tick"), Dir: dir,
		InitialState: tickState('n'), TickInterval: limits.MinTickInterval})
	waitFor(t, "3 ticks", func() bool { return a.Ticks() >= 3 })
	if a.State() != nil {
		t.Fatalf("state = %x, want none", a.State())
	}
	if s, ok, err := readState(dir, limits.DefaultMaxStateBytes); err != nil || !ok || s.hasState {
		t.Fatalf("saved state = %+v, %v, %v; want none", s, ok, err)
	}
	// Only the first tick changed anything.
	if tds := tickEvents(t, events(t, a)); len(tds) != 1 || tds[0].HasState || !tds[0].StateChanged {
		t.Fatalf("ActorTick events = %+v, want one that dropped the state", tds)
	}
}

func TestNonTickingActorIsNeverCalledAfterInit(t *testing.T) {
	e, _ := newTestEngine(t)
	counter := compile(t, e, "counter")
	if counter.Ticks() {
		t.Fatal("Component.Ticks() is true for a module without tick")
	}
	passive := start(t, e, ActorConfig{Name: "passive", Component: counter, TickInterval: limits.MinTickInterval})
	never := start(t, e, ActorConfig{Name: "never", Component: compile(t, e, "tick"), InitialState: tickState('c'),
		TickInterval: -1})
	_, before := passive.Head()
	// A ticking actor on the same engine is the clock: 10 of its ticks at
	// the same interval.
	clock := start(t, e, ActorConfig{Name: "clock", Component: compile(t, e, "tick"), InitialState: tickState('i'),
		TickInterval: limits.MinTickInterval})
	waitFor(t, "10 ticks of the clock", func() bool { return clock.Ticks() >= 10 })
	if _, after := passive.Head(); after != before || passive.Ticks() != 0 || passive.Phase() != PhaseRunning {
		t.Errorf("non-ticking actor: chain %d -> %d events, %d ticks, phase %s", before, after, passive.Ticks(), passive.Phase())
	}
	if never.Ticks() != 0 || tickCounter(never.State()) != 0 || passive.tickArmed.Load() != 0 || never.tickArmed.Load() != 0 {
		t.Errorf("TickInterval < 0 ticked: %d ticks, state %x", never.Ticks(), never.State())
	}
}

func TestTickLoopEndsWithTheRun(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "tick")

	t.Run("Stop ends every loop: no goroutine is left", func(t *testing.T) {
		baseline := runtime.NumGoroutine()
		var actors []*Actor
		for range 10 {
			actors = append(actors, start(t, e, ActorConfig{Name: "many", Component: c, InitialState: tickState('c'),
				TickInterval: limits.MinTickInterval}))
		}
		for _, a := range actors {
			waitFor(t, "a tick of each", func() bool { return a.Ticks() > 0 })
		}
		for _, a := range actors {
			if err := a.Stop(context.Background(), "test over"); err != nil {
				t.Fatal(err)
			}
			// Stop waits for the loop: no tick after it returned.
			if n := a.tickArmed.Load(); n != 0 {
				t.Fatalf("%d tick timers armed after Stop", n)
			}
		}
		waitFor(t, "the goroutine count to fall back", func() bool { return runtime.NumGoroutine() <= baseline })
	})
	t.Run("each run on a directory has its own loop", func(t *testing.T) {
		cfg := ActorConfig{Name: "rerun", Component: c, Dir: t.TempDir(), InitialState: tickState('c'), TickInterval: limits.MinTickInterval}
		for range 3 {
			a := start(t, e, cfg)
			waitFor(t, "a tick", func() bool { return a.Ticks() > 0 })
			if n := a.tickArmed.Load(); n != 1 {
				t.Fatalf("%d tick timers in a run", n)
			}
			if err := a.Stop(context.Background(), "again"); err != nil {
				t.Fatal(err)
			}
			if n := a.tickArmed.Load(); n != 0 {
				t.Fatalf("%d tick timers after Stop", n)
			}
		}
	})
	t.Run("a failed tick ends the loop", func(t *testing.T) {
		a, err := e.Start(context.Background(), ActorConfig{Name: "trapper", Component: c, InitialState: tickState('T'),
			TickInterval: limits.MinTickInterval})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Stop(context.Background(), "test over")
		<-a.Done()
		waitFor(t, "no loop", func() bool { return a.tickArmed.Load() == 0 })
	})
	t.Run("shutdown from tick ends the run", func(t *testing.T) {
		dir := t.TempDir()
		a, err := e.Start(context.Background(), ActorConfig{Name: "quitter", Component: c, Dir: dir,
			InitialState: tickState('q'), TickInterval: limits.MinTickInterval})
		if err != nil {
			t.Fatal(err)
		}
		<-a.Done()
		if a.Phase() != PhaseSucceeded || a.Err() != nil {
			t.Fatalf("phase %s err %v, want Succeeded", a.Phase(), a.Err())
		}
		if data, _, requested := a.ShutdownData(); !requested || string(data) != "bye" {
			t.Fatalf("shutdown data %q requested %v", data, requested)
		}
		// The state the shutting-down tick returned is kept.
		if got := tickCounter(a.State()); got != 3 {
			t.Errorf("state counts %d ticks, want 3", got)
		}
		waitFor(t, "no loop", func() bool { return a.tickArmed.Load() == 0 })
		if err := a.Stop(context.Background(), "release"); err != nil {
			t.Fatal(err)
		}
		ks := kinds(fileEvents(t, dir))
		if got := ks[len(ks)-2:]; got[0] != "Shutdown" || got[1] != "ActorStop" {
			t.Errorf("chain ends with %v", got)
		}
	})
	t.Run("engine Close ends the loops", func(t *testing.T) {
		e2, _ := newTestEngine(t)
		a, err := e2.Start(context.Background(), ActorConfig{Name: "closed", Component: compile(t, e2, "tick"),
			InitialState: tickState('c'), TickInterval: limits.MinTickInterval})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a tick", func() bool { return a.Ticks() > 0 })
		if err := e2.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := a.tickArmed.Load(); n != 0 || a.Phase() != PhaseStopped {
			t.Fatalf("after Close: %d timers, phase %s", n, a.Phase())
		}
	})
}

// TestHostileTicks: every way a tick can misbehave fails that actor alone,
// with init's reasons and messages, while a healthy ticker on the same
// engine keeps ticking.
func TestHostileTicks(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "tick")
	healthy := start(t, e, ActorConfig{Name: "healthy", Component: c, InitialState: tickState('c'), TickInterval: limits.MinTickInterval})
	tests := map[string]struct {
		mode    byte
		reason  Reason
		op      string
		message string
	}{
		"result pointer outside":  {mode: 'O', reason: ReasonABI, op: "tick", message: "tick returned result pointer 0xfffffff0, outside the 65536-byte memory"},
		"misaligned result":       {mode: 'M', reason: ReasonABI, op: "tick", message: "tick returned result pointer 0x402, not aligned to 4"},
		"bad result discriminant": {mode: 'D', reason: ReasonABI, op: "tick", message: "result discriminant 7"},
		"bad option discriminant": {mode: 'P', reason: ReasonABI, op: "tick", message: "option discriminant 9"},
		"state past memory":       {mode: 'S', reason: ReasonABI, op: "tick", message: "tick returned state at 0xfffa+100, outside"},
		"2 GiB state":             {mode: 'B', reason: ReasonABI, op: "tick", message: "state of 2147483648 bytes, more than the 16777216 allowed"},
		"err result":              {mode: 'E', reason: ReasonTickFailed, op: "tick", message: "tick failed on purpose"},
		"trap":                    {mode: 'T', reason: ReasonTrap, op: "tick", message: "unreachable"},
		"endless loop":            {mode: 'L', reason: ReasonTimeout, op: "tick", message: "call exceeded its 200ms deadline"},
		"realloc out of range":    {mode: 'A', reason: ReasonABI, op: abi.Realloc.Name, message: "cabi_realloc returned 0xffffff00"},
		"cabi_post traps":         {mode: 'H', reason: ReasonTrap, op: abi.TickPost.Name, message: "unreachable"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, err := e.Start(context.Background(), ActorConfig{Name: name, Component: c, InitialState: tickState(tc.mode),
				TickInterval: limits.MinTickInterval, CallTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatalf("init failed: %v", err)
			}
			defer a.Stop(context.Background(), "test over")
			select {
			case <-a.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("the hostile ticker did not fail")
			}
			var ae *ActorError
			if !errors.As(a.Err(), &ae) {
				t.Fatalf("Err() = %v (%T), want an *ActorError", a.Err(), a.Err())
			}
			if ae.Reason != tc.reason || ae.Op != tc.op || !strings.Contains(ae.Message, tc.message) {
				t.Fatalf("got %s %s: %q; want %s %s with %q", ae.Reason, ae.Op, ae.Message, tc.reason, tc.op, tc.message)
			}
			if a.Phase() != PhaseFailed || a.Ticks() != 0 {
				t.Errorf("phase %s, %d ticks; want Failed, 0", a.Phase(), a.Ticks())
			}
			evs := events(t, a)
			if _, stop, ok := findEvent(evs, chain.KindActorStop); !ok || stop["reason"] != string(tc.reason) || stop["op"] != tc.op {
				t.Errorf("ActorStop = %v", stop)
			}
			if tc.reason == ReasonTickFailed {
				if tds := tickEvents(t, evs); len(tds) != 1 || tds[0].OK || tds[0].Error != tc.message {
					t.Errorf("ActorTick events = %+v, want one with the error", tds)
				}
			}
			// The state of the failed tick is not saved.
			if !bytes.Equal(a.State(), tickState(tc.mode)) {
				t.Errorf("state = %x after a failed tick", a.State())
			}
			n := healthy.Ticks()
			waitFor(t, "the healthy ticker to go on", func() bool { return healthy.Ticks() > n })
		})
	}
	if healthy.Phase() != PhaseRunning {
		t.Fatalf("healthy ticker is %s: %v", healthy.Phase(), healthy.Err())
	}
}

func TestTickExportWithWrongSignatureIsRefused(t *testing.T) {
	e, _ := newTestEngine(t)
	_, err := e.Compile(context.Background(), readWasm(t, "ticksig"))
	var ae *ActorError
	want := `export "troupe:actor/ticker#tick" has signature (i32 i32 i32 i32) -> (i32), want (i32 i32 i32 i64) -> (i32)`
	if !errors.As(err, &ae) || ae.Reason != ReasonInvalidModule || !strings.Contains(ae.Message, want) {
		t.Fatalf("Compile = %v; want InvalidModule with %q", err, want)
	}
}
