package actorhost

import (
	"context"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestLinearMemoryLimit(t *testing.T) {
	tests := map[string]func(limit, capBytes uint64, l *memoryLimiter) *linearMemory{
		"platform": allocateLinearMemory,
		"heap":     newHeapMemory,
	}
	for name, alloc := range tests {
		t.Run(name, func(t *testing.T) {
			l := newMemoryLimiter(4, nil, nil)
			lm := alloc(l.limit, wasmPageSize, l)
			defer lm.backing.Free()
			buf := lm.backing.Reallocate(wasmPageSize)
			if len(buf) != wasmPageSize {
				t.Fatalf("len %d", len(buf))
			}
			buf[wasmPageSize-1] = 7
			grown := lm.backing.Reallocate(4 * wasmPageSize)
			if len(grown) != 4*wasmPageSize || grown[wasmPageSize-1] != 7 {
				t.Fatal("growth lost the contents")
			}
			grown[4*wasmPageSize-1] = 1 // the last byte is writable
			if l.refused.Load() != 0 {
				t.Fatal("a grow within the limit was recorded as refused")
			}
			if got := lm.backing.Reallocate(5 * wasmPageSize); got != nil {
				t.Fatal("a grow past the limit succeeded")
			}
			if l.refused.Load() != 5*wasmPageSize {
				t.Fatalf("refused = %d", l.refused.Load())
			}
		})
	}
}

func TestMmapMemoryDoesNotMoveAndIsLazy(t *testing.T) {
	l := newMemoryLimiter(256, nil, nil)
	lm := allocateLinearMemory(l.limit, 0, l)
	defer lm.backing.Free()
	if _, ok := lm.backing.(*mmapMemory); !ok {
		t.Skip("no address-space reservation on this platform")
	}
	a := lm.backing.Reallocate(wasmPageSize)
	b := lm.backing.Reallocate(200 * wasmPageSize)
	if unsafe.SliceData(a) != unsafe.SliceData(b) {
		t.Fatal("growth moved the memory")
	}
	before, _ := lm.resident()
	b[0], b[100*wasmPageSize] = 1, 1
	after, _ := lm.resident()
	// 200 pages (12.5 MiB) are committed; only what was touched is in RAM.
	if after > 1<<20 || after <= before {
		t.Fatalf("resident %d -> %d bytes after touching two bytes of 200 pages", before, after)
	}
}

// TestEveryEndReleasesLinearMemory: whatever way an actor's run ends (a
// timeout closes the module from wazero's side, a trap, a stop), its mapping is released once the actor is stopped.
func TestEveryEndReleasesLinearMemory(t *testing.T) {
	probe := newMemoryLimiter(1, nil, nil).Allocate(wasmPageSize, wasmPageSize)
	probe.Free()
	if _, ok := probe.(*mmapMemory); !ok {
		t.Skip("no address-space reservation on this platform")
	}
	e, _ := newTestEngine(t)
	before := liveMappings.Load()
	for _, name := range []string{"loop", "realloc_trap", "grow", "counter", "shutdown", "initerr", "sleep"} {
		a, _ := e.Start(context.Background(), ActorConfig{Name: name, Component: compile(t, e, name),
			CallTimeout: 50 * time.Millisecond, MemoryPages: 8})
		if a == nil {
			t.Fatalf("%s did not start", name)
		}
		if err := a.Stop(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
	}
	if got := liveMappings.Load() - before; got != 0 {
		t.Fatalf("%d linear memories still mapped after every actor stopped", got)
	}
}

// TestHostBudgetRefusesGrowth: linear memories of several actors share the
// host's budget; a grow past it is refused (nil: -1 to the guest) and
// recorded as the budget's refusal, not the actor's limit; freeing one
// memory gives its pages back for the others.
func TestHostBudgetRefusesGrowth(t *testing.T) {
	tests := map[string]func(limit, capBytes uint64, l *memoryLimiter) *linearMemory{
		"platform": allocateLinearMemory,
		"heap":     newHeapMemory,
	}
	for name, alloc := range tests {
		t.Run(name, func(t *testing.T) {
			budget := NewMemoryBudget(10 * wasmPageSize)
			a, b := newMemoryLimiter(16, budget, nil), newMemoryLimiter(16, budget, nil)
			am, bm := alloc(a.limit, 0, a), alloc(b.limit, 0, b)
			defer am.backing.Free()
			if got := am.backing.Reallocate(6 * wasmPageSize); got == nil {
				t.Fatal("a grow within the budget was refused")
			}
			if got := bm.backing.Reallocate(4 * wasmPageSize); got == nil {
				t.Fatal("a grow that fills the budget exactly was refused")
			}
			if used := budget.Used(); used != 10*wasmPageSize {
				t.Fatalf("budget used %d, want 10 pages", used)
			}
			if got := bm.backing.Reallocate(5 * wasmPageSize); got != nil {
				t.Fatal("a grow past the host's budget succeeded")
			}
			if !b.byBudget.Load() || b.refused.Load() != 5*wasmPageSize {
				t.Fatalf("refusal not recorded as the budget's: %d bytes, by budget %v", b.refused.Load(), b.byBudget.Load())
			}
			if msg := b.refusal(); !strings.Contains(msg, "host's memory budget") || !strings.Contains(msg, "640.0 KiB") {
				t.Fatalf("refusal message %q", msg)
			}
			if a.refused.Load() != 0 {
				t.Fatal("the other actor's memory recorded a refusal")
			}
			bm.backing.Free()
			if used := budget.Used(); used != 6*wasmPageSize {
				t.Fatalf("budget used %d after freeing 4 pages, want 6 pages", used)
			}
			if got := am.backing.Reallocate(10 * wasmPageSize); got == nil {
				t.Fatal("the pages freed by one memory can't be used by another")
			}
		})
	}
}

// TestHostBudgetFailsOnlyTheGrowingActor: with a host budget, an actor
// whose grow the budget refuses sees -1: one that copes runs on with what
// it has, one that traps fails alone with MemoryLimit naming the host's
// budget, and the actors already running are untouched; the budget gets
// every page back when the actors stop.
func TestHostBudgetFailsOnlyTheGrowingActor(t *testing.T) {
	budget := NewMemoryBudget(1 << 40)
	e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", MemoryBudget: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	counter, growcope, grow := compile(t, e, "counter"), compile(t, e, "growcope"), compile(t, e, "grow")
	// The compiled code is measured process-wide (other tests' engines
	// count until collected): the actors get 8 MiB beyond it.
	budget.SetLimit(budget.Used() + 8<<20)
	var bystanders []*Actor
	for range 3 {
		bystanders = append(bystanders, start(t, e, ActorConfig{Name: "counter", Component: counter}))
	}
	coper := start(t, e, ActorConfig{Name: "coper", Component: growcope})
	if got := string(coper.State()); got != "small" {
		t.Fatalf("the coping actor's grow of 1000 pages in an 8 MiB budget: state %q, want small (memory.grow returned -1)", got)
	}
	grower, err := e.Start(context.Background(), ActorConfig{Name: "grower", Component: grow})
	if ReasonOf(err) != ReasonMemoryLimit || !strings.Contains(err.Error(), "host's memory budget") {
		t.Fatalf("an actor growing past the host's budget: %v, want MemoryLimit naming the host's budget", err)
	}
	if budget.Refusals() == 0 {
		t.Fatal("the budget counted no refusal")
	}
	if err := grower.Stop(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	for _, a := range append(bystanders, coper) {
		if a.Phase() != PhaseRunning {
			t.Fatalf("actor %s is %s after another one ran out of the host's budget", a.Name(), a.Phase())
		}
		if a.Err() != nil {
			t.Fatalf("actor %s: %v", a.Name(), a.Err())
		}
	}
	// A new actor starts in the room the failed one gave back.
	late := start(t, e, ActorConfig{Name: "late", Component: counter})
	for _, a := range append(bystanders, coper, late) {
		if err := a.Stop(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
	}
	if used, code := budget.Used(), e.codeHeld.Load(); used != code {
		t.Fatalf("the budget holds %d bytes after every actor stopped; the compiled code alone holds %d", used, code)
	}
}
