package actorhost

import (
	"context"
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
			l := newMemoryLimiter(4)
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
	l := newMemoryLimiter(256)
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
	before := lm.resident()
	b[0], b[100*wasmPageSize] = 1, 1
	after := lm.resident()
	// 200 pages (12.5 MiB) are committed; only what was touched is in RAM.
	if after > 1<<20 || after <= before {
		t.Fatalf("resident %d -> %d bytes after touching two bytes of 200 pages", before, after)
	}
}

// TestEveryEndReleasesLinearMemory: whatever way an actor's run ends (a
// timeout closes the module from wazero's side, a trap, a stop), its mapping is released once the actor is stopped.
func TestEveryEndReleasesLinearMemory(t *testing.T) {
	probe := newMemoryLimiter(1).Allocate(wasmPageSize, wasmPageSize)
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
