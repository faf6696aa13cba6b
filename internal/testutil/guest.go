package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// Host serves the runtime a Guest imports: a *FakeRuntime, or the real
// runtime handler (see TestFakeAndHandlerAgree).
type Host interface {
	// Instantiate defines the host's modules in r; the Guest adds WASI.
	Instantiate(ctx context.Context, r wazero.Runtime) error
	// Bind returns the context each call into the guest runs with (the
	// real handler finds its actor there).
	Bind(ctx context.Context) context.Context
}

// compilationCache is shared by every Guest: on disk, so each distinct module
// is compiled once across test binaries and runs (wazero keys entries by its
// own version and the module's hash, and writes them atomically), in memory
// when there is no usable cache directory.
var compilationCache = newCompilationCache()

func newCompilationCache() wazero.CompilationCache {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	if c, err := wazero.NewCompilationCacheWithDir(filepath.Join(base, "troupe", "testutil-wazero")); err == nil {
		return c
	}
	return wazero.NewCompilationCache()
}

// InitError is an err result of init (or tick): the actor's own message.
type InitError struct{ Message string }

func (e *InitError) Error() string { return "init returned an error: " + e.Message }

// Guest is one instance of an actor under a Host, in its own wazero runtime
// with WASI preview 1 (real clocks and randomness, so Go guests' timers and
// maps work), instantiated the way the engine does it: _initialize first
// when exported, and init and tick called with the state lowered through
// the guest's cabi_realloc.
type Guest struct {
	Host    Host
	r       wazero.Runtime
	mod     api.Module
	realloc api.Function // looked up once: ExportedFunction builds a new callable each time
	stdout  envtestutil.LockedBuffer
	stderr  envtestutil.LockedBuffer
}

// StartGuest instantiates wasm under host and closes it when the test ends.
func StartGuest(t testing.TB, wasm []byte, host Host) *Guest {
	t.Helper()
	ctx := context.Background()
	g, err := NewGuest(ctx, wasm, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(ctx) })
	return g
}

// NewGuest instantiates wasm under host. Close it when done.
func NewGuest(ctx context.Context, wasm []byte, host Host) (*Guest, error) {
	g := &Guest{Host: host}
	g.r = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(compilationCache).
		WithCloseOnContextDone(true))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, g.r); err != nil {
		g.r.Close(ctx)
		return nil, fmt.Errorf("instantiating WASI: %w", err)
	}
	if err := host.Instantiate(ctx, g.r); err != nil {
		g.r.Close(ctx)
		return nil, fmt.Errorf("instantiating %s: %w", abi.RuntimeModule, err)
	}
	compiled, err := g.r.CompileModule(ctx, wasm)
	if err != nil {
		g.r.Close(ctx)
		return nil, fmt.Errorf("compiling the actor: %w", err)
	}
	g.mod, err = g.r.InstantiateModule(host.Bind(ctx), compiled, wazero.NewModuleConfig().
		WithName("actor").
		WithStartFunctions(abi.Initialize.Name).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStdout(&g.stdout).WithStderr(&g.stderr))
	if err != nil {
		g.r.Close(ctx)
		return nil, fmt.Errorf("instantiating the actor: %w (stderr: %s)", err, g.stderr.String())
	}
	return g, nil
}

// Module is the actor's instance.
func (g *Guest) Module() api.Module { return g.mod }

// Stdout is what the actor wrote to WASI stdout so far.
func (g *Guest) Stdout() string { return g.stdout.String() }

// Stderr is what the actor wrote to WASI stderr so far.
func (g *Guest) Stderr() string { return g.stderr.String() }

// Close releases the instance and its runtime.
func (g *Guest) Close(ctx context.Context) error { return g.r.Close(ctx) }

// Init calls theater:simple/actor#init as the host does: the state (when
// hasState) and the actor id are lowered into memory from cabi_realloc, the
// result is lifted from the area init returns, then post-return runs when
// exported. An err result is an *InitError; a trap is any other error.
func (g *Guest) Init(ctx context.Context, state []byte, hasState bool, actorID string) (newState []byte, hasNewState bool, err error) {
	return g.call(ctx, abi.Init, abi.InitPost, state, hasState, func(args []uint64) ([]uint64, error) {
		ip, in, err := g.lower(ctx, []byte(actorID))
		return append(args, uint64(ip), uint64(in)), err
	})
}

// Tick calls the optional troupe:actor/ticker#tick as the host does, with
// the state and the host's time in ms since the epoch; like Init otherwise.
// It fails when the actor does not export tick.
func (g *Guest) Tick(ctx context.Context, state []byte, hasState bool, now time.Time) (newState []byte, hasNewState bool, err error) {
	return g.call(ctx, abi.Tick, abi.TickPost, state, hasState, func(args []uint64) ([]uint64, error) {
		return append(args, uint64(now.UnixMilli())), nil
	})
}

// call lowers the state, appends the rest of the arguments, calls export,
// lifts its result<tuple<option<list<u8>>>, string> and runs post when the
// actor exports it.
func (g *Guest) call(ctx context.Context, export, post abi.Export, state []byte, hasState bool,
	rest func(args []uint64) ([]uint64, error)) (newState []byte, hasNewState bool, err error) {
	ctx = g.Host.Bind(ctx)
	fn := g.mod.ExportedFunction(export.Name)
	if fn == nil {
		return nil, false, errors.New("actor does not export " + export.Name)
	}
	var isSome, sp, sn uint32
	if hasState {
		isSome = 1
		if sp, sn, err = g.lower(ctx, state); err != nil {
			return nil, false, err
		}
	}
	args, err := rest([]uint64{uint64(isSome), uint64(sp), uint64(sn)})
	if err != nil {
		return nil, false, err
	}
	out, err := fn.Call(ctx, args...)
	if err != nil {
		return nil, false, fmt.Errorf("calling %s: %w (stderr: %s)", export.Name, err, g.stderr.String())
	}
	ret := uint32(out[0])
	newState, hasNewState, err = liftResult(g.mod.Memory(), ret, export.Name)
	if postFn := g.mod.ExportedFunction(post.Name); postFn != nil {
		if _, perr := postFn.Call(ctx, uint64(ret)); perr != nil {
			return nil, false, fmt.Errorf("calling %s: %w", post.Name, perr)
		}
	}
	return newState, hasNewState, err
}

// lower copies b into the guest's memory from its cabi_realloc (after the
// fake's churn allocation, when it asks for one), turning a bad allocator
// answer into an error.
func (g *Guest) lower(ctx context.Context, b []byte) (ptr, n uint32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("lowering an argument: %v", r)
		}
	}()
	if g.realloc == nil {
		if g.realloc = g.mod.ExportedFunction(abi.Realloc.Name); g.realloc == nil {
			return 0, 0, errors.New("actor does not export " + abi.Realloc.Name)
		}
	}
	var churn uint32
	if fr, ok := g.Host.(*FakeRuntime); ok {
		churn = fr.ReallocChurn
	}
	ptr, n = lowerBytes(ctx, g.mod, g.realloc, b, churn)
	return ptr, n, nil
}

// liftResult reads result<tuple<option<list<u8>>>, string> (abi.StateResult),
// which export returned a pointer to. An err is an *InitError (for init and
// tick alike).
func liftResult(mem api.Memory, ret uint32, export string) ([]byte, bool, error) {
	layout := abi.StateResult
	if ret%layout.Align != 0 {
		return nil, false, fmt.Errorf("%s returned %#x, not %d-byte aligned", export, ret, layout.Align)
	}
	area, ok := mem.Read(ret, layout.Size)
	if !ok {
		return nil, false, fmt.Errorf("%s returned %#x, past the end of memory", export, ret)
	}
	le := binary.LittleEndian
	switch area[0] {
	case 0:
		switch area[abi.StateOption] {
		case 0:
			return nil, false, nil
		case 1:
			ptr, n := le.Uint32(area[abi.StatePtr:]), le.Uint32(area[abi.StateLen:])
			b, ok := mem.Read(ptr, n)
			if !ok {
				return nil, false, fmt.Errorf("%s's new state (%d bytes at %#x) is past the end of memory", export, n, ptr)
			}
			return bytes.Clone(b), true, nil
		default:
			return nil, false, fmt.Errorf("%s returned option discriminant %d", export, area[abi.StateOption])
		}
	case 1:
		ptr, n := le.Uint32(area[abi.ResultPayload:]), le.Uint32(area[abi.ResultPayload+4:])
		b, ok := mem.Read(ptr, n)
		if !ok {
			return nil, false, fmt.Errorf("%s's error message (%d bytes at %#x) is past the end of memory", export, n, ptr)
		}
		if !utf8.Valid(b) {
			return nil, false, fmt.Errorf("%s's error message is not valid UTF-8", export)
		}
		return nil, false, &InitError{Message: string(b)}
	default:
		return nil, false, fmt.Errorf("%s returned result discriminant %d", export, area[0])
	}
}
