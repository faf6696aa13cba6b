package runtimehandler

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/abi"
)

// Every (pointer, length) and return pointer a guest passes is checked
// before anything is read, copied or done: a bad one traps the call with a
// *TrapError, records nothing, allocates nothing, and leaves the actor and
// the host usable.
func TestHostileArguments(t *testing.T) {
	const page = 65536
	const huge = 2 << 30 // 2 GiB
	tests := map[string]struct {
		export string
		params []uint64
		want   string
	}{
		"get-actor-id retptr past memory":       {"call-get-actor-id", []uint64{page - 4}, "return area (ptr 65532, 8 bytes) lies outside guest memory"},
		"get-actor-id retptr at 2^32-4":         {"call-get-actor-id", []uint64{0xFFFFFFFC}, "lies outside guest memory"},
		"get-actor-id retptr misaligned":        {"call-get-actor-id", []uint64{17}, "return pointer 17 is not aligned to 4"},
		"get-actor-name retptr past memory":     {"call-get-actor-name", []uint64{page}, "lies outside guest memory"},
		"get-theater-version retptr misaligned": {"call-get-theater-version", []uint64{2}, "not aligned to 4"},
		"get-env name len 2 GiB":                {"call-get-env", []uint64{argArea, huge, retArea}, "name (ptr 1024, len 2147483648) lies outside guest memory of 65536 bytes"},
		"get-env name ptr+len wraps 2^32":       {"call-get-env", []uint64{0xFFFFFFFF, 2, retArea}, "lies outside guest memory"},
		"get-env name len 2^32-1":               {"call-get-env", []uint64{1, 0xFFFFFFFF, retArea}, "lies outside guest memory"},
		"get-env ptr past memory, len 0":        {"call-get-env", []uint64{page + 1, 0, retArea}, "lies outside guest memory"},
		"get-env retptr past memory":            {"call-get-env", []uint64{argArea, 4, page - 8}, "return area"},
		"get-env retptr misaligned":             {"call-get-env", []uint64{argArea, 4, 18}, "not aligned to 4"},
		"log level len 2 GiB":                   {"call-log", []uint64{argArea, huge, argArea2, 1, retArea}, "level (ptr 1024, len 2147483648)"},
		"log message len 2 GiB":                 {"call-log", []uint64{argArea, 4, argArea2, huge, retArea}, "message (ptr 8192, len 2147483648)"},
		"log message wraps":                     {"call-log", []uint64{argArea, 4, 0xFFFFFFF0, 0x20, retArea}, "message"},
		"log retptr misaligned":                 {"call-log", []uint64{argArea, 4, argArea2, 1, 13}, "not aligned to 4"},
		"log retptr past memory":                {"call-log", []uint64{argArea, 4, argArea2, 1, 0xFFFFFFF8}, "return area"},
		"record-metric name len 2 GiB":          {"call-record-metric", []uint64{argArea, huge, f64bits(1), retArea}, "name (ptr 1024"},
		"record-metric retptr misaligned":       {"call-record-metric", []uint64{argArea, 1, f64bits(1), 1}, "not aligned to 4"},
		"record-event type len 2 GiB":           {"call-record-event", []uint64{argArea, huge, argArea2, 1, retArea}, "event type"},
		"record-event data len 2 GiB":           {"call-record-event", []uint64{argArea, 1, argArea2, huge, retArea}, "event data (ptr 8192, len 2147483648)"},
		"record-event data ptr at the end":      {"call-record-event", []uint64{argArea, 1, page, 1, retArea}, "event data"},
		"record-event retptr past memory":       {"call-record-event", []uint64{argArea, 1, argArea2, 1, page - 11}, "return"},
		"get-system-info retptr aligned 4 only": {"call-get-system-info", []uint64{20}, "return pointer 20 is not aligned to 8"},
		"get-system-info retptr past memory":    {"call-get-system-info", []uint64{page - 48}, "return area (ptr 65488, 56 bytes)"},
		"shutdown data len 2 GiB":               {"call-shutdown", []uint64{1, argArea, huge, retArea}, "shutdown data"},
		"shutdown bad discriminant":             {"call-shutdown", []uint64{2, argArea, 1, retArea}, "option discriminant 2 is invalid: must be 0 (none) or 1 (some)"},
		"shutdown discriminant 2^32-1":          {"call-shutdown", []uint64{0xFFFFFFFF, 0, 0, retArea}, "option discriminant 4294967295"},
		"shutdown retptr misaligned":            {"call-shutdown", []uint64{0, 0, 0, 3}, "not aligned to 4"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "guest.wasm")
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			te := h.trapCall(tc.want, tc.export, tc.params...)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Fatalf("a trapping call allocated %d bytes", grew)
			}
			if !strings.HasPrefix(te.Func, strings.TrimPrefix(tc.export, "call-")) {
				t.Fatalf("trap names function %q", te.Func)
			}
			if n := len(h.events()); n != 0 {
				t.Fatalf("a call that trapped before acting recorded %d events", n)
			}
			if _, _, requested := h.actor.Shutdown(); requested {
				t.Fatal("a trapping shutdown took effect")
			}
			// The instance and the host still work.
			h.mustCall("call-get-actor-id", retArea)
			if h.str(retArea) != h.actor.ID() {
				t.Fatal("the actor is broken after a trap")
			}
		})
	}
}

// A guest's cabi_realloc is as untrusted as its arguments.
func TestHostileRealloc(t *testing.T) {
	tests := map[string]struct {
		mode, answer uint64
		want         string
	}{
		"answer past memory":                 {mode: 1, answer: 65536, want: "cabi_realloc returned 65536 for 36 bytes, which lies outside guest memory"},
		"answer straddles the end":           {mode: 1, answer: 65536 - 10, want: "cabi_realloc returned 65526 for 36 bytes"},
		"answer 2^32-1":                      {mode: 1, answer: 0xFFFFFFFF, want: "cabi_realloc returned 4294967295"},
		"allocator traps":                    {mode: 2, want: "cabi_realloc failed: wasm error: unreachable"},
		"allocator calls back into the host": {mode: 3, want: "called from inside cabi_realloc (or troupe:actor/result-area#result-area), which the canonical ABI forbids"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "guest.wasm")
			h.mustCall("set-realloc-answer", tc.answer)
			h.mustCall("set-realloc-mode", tc.mode)
			te := h.trapCall(tc.want, "call-get-actor-id", retArea)
			if te.Func != abi.GetActorID.Name {
				t.Fatalf("trap names %q", te.Func)
			}
			// The call was recorded before its result was lowered; the
			// trap is the engine's to record.
			if n := len(h.events()); n != 1 {
				t.Fatalf("%d events", n)
			}
			// A sane allocator again: the actor works, the re-entry guard is reset.
			h.mustCall("set-realloc-mode", 0)
			h.mustCall("call-get-actor-id", retArea)
			if h.str(retArea) != h.actor.ID() {
				t.Fatal("the actor is broken after the trap")
			}
		})
	}
}

// An allocator that answers a misaligned pointer traps. The runtime
// interface lowers only strings and list<u8> (alignment 1), so this drives
// alloc directly with an alignment of 8.
func TestHostileReallocMisaligned(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	h.mustCall("set-realloc-answer", 1003)
	h.mustCall("set-realloc-mode", 1)
	c := call{ctx: h.ctx, fn: "test", mod: h.mod, a: h.actor}
	err := func() (err error) {
		defer func() { err, _ = recover().(error) }()
		c.alloc(16, 8)
		return nil
	}()
	var te *TrapError
	if !errors.As(err, &te) || te.Reason != "cabi_realloc returned 1003, which is not aligned to 8" {
		t.Fatalf("got %v", err)
	}
}

// An allocator that grows memory moves it: the host must write through the
// memory as it is after the call, not a stale view.
func TestReallocGrowingMemory(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	h.mustCall("set-realloc-mode", 5)
	p, n := h.writeStr(argArea, "GREETING")
	h.mustCall("call-get-env", p, n, retArea)
	if got, ptr := h.str(retArea+4), h.u32(retArea+4); got != "hi there" || ptr != 65536 {
		t.Fatalf("got %q at %d, want \"hi there\" at 65536 (the new page)", got, ptr)
	}
	h.mustCall("call-get-system-info", retArea)
	if h.str(retArea) != "node-1" || h.str(retArea+16) != "6.1.0-test" {
		t.Fatal("system info strings wrong after growth")
	}
}

// A guest whose allocator never returns is stopped by the call's deadline
// (the engine runs with WithCloseOnContextDone), and the host goes on.
func TestReallocLoopingForeverHitsDeadline(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	h.mustCall("set-realloc-mode", 4)
	ctx, cancel := context.WithTimeout(h.ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.mod.ExportedFunction("call-get-actor-id").Call(ctx, retArea)
	if err == nil {
		t.Fatal("a looping allocator returned")
	}
	if !strings.Contains(err.Error(), "cabi_realloc failed") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v to stop", d)
	}
}
