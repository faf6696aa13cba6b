package actorhost

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/troupe-dev/troupe/internal/testutil"
)

// newCompileEngine is an engine with one compile slot and the given cache
// directory ("" for none).
func newCompileEngine(t *testing.T, cacheDir string, timeout time.Duration) *Engine {
	t.Helper()
	e, err := NewEngine(context.Background(), EngineOptions{
		CacheDir: cacheDir, NoDiskCache: cacheDir == "", Logger: logr.Discard(), SystemInfo: fixedSystemInfo{},
		Version: "test", MaxConcurrentCompiles: 1, CompileTimeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// holdSlot takes the engine's only compile slot until the test ends: a
// module that reaches wazero's compiler then waits.
func holdSlot(t *testing.T, e *Engine) {
	t.Helper()
	e.compileSlots <- struct{}{}
	t.Cleanup(func() { <-e.compileSlots })
}

// TestCompileRefusesBombs: the modules, which took wazero 45 s and
// 955 MB (a 400 KB module with a br_table of 400,000 targets), 24 s (40,000
// nested blocks) and more than 180 s (100,000), are refused with
// InvalidModule naming the bound, without reaching the compiler: the
// engine's only compile slot is held throughout, so a module that reached
// it would wait (the control shows it does).
func TestCompileRefusesBombs(t *testing.T) {
	e := newCompileEngine(t, "", time.Minute)
	holdSlot(t, e)
	tests := map[string]struct {
		wasm    []byte
		minSize int
		message string
	}{
		"br_table of 400,000 targets": {wasm: testutil.FuncModule(testutil.BrTable(400_000), 0), minSize: 400_000,
			message: "InvalidModule: compile: function 0's br_table has 400000 targets, more than the 16384 allowed"},
		"40,000 nested blocks": {wasm: testutil.FuncModule(testutil.NestedBlocks(40_000), 0), minSize: 120_000,
			message: "InvalidModule: compile: function 0 nests blocks 40000 deep, more than the 8192 allowed"},
		"100,000 nested blocks": {wasm: testutil.FuncModule(testutil.NestedBlocks(100_000), 0), minSize: 300_000,
			message: "InvalidModule: compile: function 0 nests blocks 100000 deep, more than the 8192 allowed"},
		"four billion locals": {wasm: testutil.FuncModule(nil, 0xfffffff0),
			message: "InvalidModule: compile: function 0 declares 4294967280 locals, more than the 50000 allowed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if len(tc.wasm) < tc.minSize {
				t.Fatalf("the module has %d bytes, want at least %d", len(tc.wasm), tc.minSize)
			}
			// The deadline only keeps a regression from hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := e.Compile(ctx, tc.wasm)
			var ae *ActorError
			if !errors.As(err, &ae) || ae.Reason != ReasonInvalidModule {
				t.Fatalf("err = %v, want InvalidModule", err)
			}
			if err.Error() != tc.message {
				t.Fatalf("message %q, want %q", err, tc.message)
			}
		})
	}
	t.Run("control: a module within bounds waits for the slot", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := e.Compile(ctx, readWasm(t, "minimal")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want it to wait for the held slot", err)
		}
	})
}

// slowModule passes every bound and takes wazero seconds to compile (40
// functions of 3,000 blocks each), cancelable between its functions.
func slowModule() []byte { return testutil.FuncsModule(testutil.SequentialBlocks(3000), 0, 40) }

// TestSlowCompileDelaysNoWarmStart: while a long compile holds the engine's
// only slot, a module compiled before compiles (from memory) and starts at
// once, and the long compile is still running when that start is done; a
// module never compiled waits for the slot. Canceling the long compile's
// only caller stops it between two functions.
func TestSlowCompileDelaysNoWarmStart(t *testing.T) {
	e := newCompileEngine(t, "", 10*time.Minute)
	if _, err := e.Compile(context.Background(), readWasm(t, "minimal")); err != nil {
		t.Fatal(err)
	}
	slowCtx, cancelSlow := context.WithCancel(context.Background())
	defer cancelSlow()
	slowDone := make(chan error, 1)
	go func() {
		_, err := e.Compile(slowCtx, slowModule())
		slowDone <- err
	}()
	waitFor(t, "the slow compile to take the slot", func() bool { return len(e.compileSlots) == 1 })

	c, err := e.Compile(context.Background(), readWasm(t, "minimal"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.Start(context.Background(), ActorConfig{Name: "warm", Component: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-slowDone:
		t.Fatalf("the slow compile ended (%v) before the warm start was done: the test proves nothing", err)
	default:
	}
	// A cold module waits for the slot.
	coldCtx, cancelCold := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelCold()
	if _, err := e.Compile(coldCtx, readWasm(t, "counter")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cold compile: %v, want it to wait for the slot", err)
	}

	cancelSlow()
	if err := <-slowDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("slow compile: %v, want canceled", err)
	}
	waitFor(t, "the canceled compile to give back its slot", func() bool { return len(e.compileSlots) == 0 })
}

// TestCompiledOnDiskTakesNoSlot: a module another engine compiled into the
// same on-disk cache (the host before a restart) compiles without a slot.
func TestCompiledOnDiskTakesNoSlot(t *testing.T) {
	dir := t.TempDir()
	first := newCompileEngine(t, dir, time.Minute)
	if _, err := first.Compile(context.Background(), readWasm(t, "counter")); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newCompileEngine(t, dir, time.Minute)
	holdSlot(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.Compile(ctx, readWasm(t, "counter")); err != nil {
		t.Fatalf("a module in the cache waited for a slot or failed: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := e.Compile(ctx2, readWasm(t, "minimal")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a module not in the cache: %v, want it to wait for the slot", err)
	}
}

// TestCompileDeadline: a compile past CompileTimeout fails with
// InvalidModule saying so, and frees its slot.
func TestCompileDeadline(t *testing.T) {
	e := newCompileEngine(t, "", time.Millisecond)
	_, err := e.Compile(context.Background(), slowModule())
	var ae *ActorError
	if !errors.As(err, &ae) || ae.Reason != ReasonInvalidModule || !strings.Contains(err.Error(), "took longer than the 1ms allowed") {
		t.Fatalf("err = %v, want InvalidModule for the deadline", err)
	}
	if len(e.compileSlots) != 0 {
		t.Fatal("the slot was not given back")
	}
}
