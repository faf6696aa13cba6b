package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// SystemInfo is the system-info record the fake serves.
type SystemInfo struct {
	Hostname, OSType, OSRelease          string
	CPUCount                             uint32
	MemoryTotal, MemoryAvailable, Uptime uint64
}

// LogLine is one call to log that the fake accepted.
type LogLine struct{ Level, Message string }

// Metric is one call to record-metric that the fake accepted.
type Metric struct {
	Name  string
	Value float64
}

// Event is one call to record-event that the fake accepted.
type Event struct {
	Type string
	Data []byte
}

// FakeRuntime is a test double of the runtime handler: a strict host-side
// implementation of the canonical ABI of theater:simple/runtime that records
// what the guest does, for guest-side tests that must not depend on the real
// handler and its chain. Its checks follow the handler's contract (log levels,
// finite metrics, non-empty event types, valid UTF-8) so guests see error
// results; it does not enforce size limits. Fields are read when the guest
// calls; use SetEnv to change variables while a guest runs.
type FakeRuntime struct {
	ID, Name, Version string
	SystemInfo        SystemInfo
	Now               func() time.Time // nil: time.Now
	// ReallocChurn, when positive, makes every lowering of a string first
	// ask cabi_realloc for that many bytes more and never use them: legal for
	// a host, and it makes the guest's allocator (and garbage collector) run
	// between the allocations of one call, where a guest that does not keep
	// its buffers alive loses them.
	ReallocChurn uint32

	mu       sync.Mutex
	env      map[string]string
	calls    []string
	logs     []LogLine
	metrics  []Metric
	events   []Event
	shutdown *[]byte // nil: not requested; points at nil for shutdown(none)
	reallocs map[api.Module]api.Function
}

// SetEnv declares name with value for get-env.
func (f *FakeRuntime) SetEnv(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.env == nil {
		f.env = map[string]string{}
	}
	f.env[name] = value
}

// UnsetEnv makes get-env return none for name.
func (f *FakeRuntime) UnsetEnv(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.env, name)
}

// Calls returns the names of the runtime functions called so far, in order.
func (f *FakeRuntime) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Logs returns the accepted log lines.
func (f *FakeRuntime) Logs() []LogLine {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LogLine(nil), f.logs...)
}

// Metrics returns the accepted metric values.
func (f *FakeRuntime) Metrics() []Metric {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Metric(nil), f.metrics...)
}

// Events returns the accepted custom events.
func (f *FakeRuntime) Events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.events...)
}

// ShutdownRequest reports whether the guest called shutdown, and with what.
func (f *FakeRuntime) ShutdownRequest() (data []byte, hasData, requested bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdown == nil {
		return nil, false, false
	}
	return *f.shutdown, *f.shutdown != nil, true
}

func (f *FakeRuntime) record(fn string) {
	f.mu.Lock()
	f.calls = append(f.calls, fn)
	f.mu.Unlock()
}

// hostModule builds theater:simple/runtime into r.
func (f *FakeRuntime) hostModule(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(RuntimeModule)
	def := func(name string, fn api.GoModuleFunc) {
		t := RuntimeImports[name]
		b.NewFunctionBuilder().WithGoModuleFunction(fn, t.Params, t.Results).Export(name)
	}
	def("get-actor-id", func(ctx context.Context, m api.Module, s []uint64) {
		f.record("get-actor-id")
		f.storeString(ctx, m, u32(s[0]), f.ID)
	})
	def("get-actor-name", func(ctx context.Context, m api.Module, s []uint64) {
		f.record("get-actor-name")
		f.storeString(ctx, m, u32(s[0]), f.Name)
	})
	def("get-theater-version", func(ctx context.Context, m api.Module, s []uint64) {
		f.record("get-theater-version")
		f.storeString(ctx, m, u32(s[0]), f.Version)
	})
	def("get-current-time", func(_ context.Context, _ api.Module, s []uint64) {
		f.record("get-current-time")
		now := time.Now
		if f.Now != nil {
			now = f.Now
		}
		s[0] = uint64(now().UnixMilli())
	})
	def("get-env", func(ctx context.Context, m api.Module, s []uint64) {
		f.record("get-env")
		name, nameOK := loadString(m, u32(s[0]), u32(s[1]))
		ret := u32(s[2])
		f.mu.Lock()
		value, ok := f.env[name]
		f.mu.Unlock()
		if !nameOK || !ok {
			writeU8(m, ret, 0)
			return
		}
		ptr, n := f.lowerString(ctx, m, value)
		writeU8(m, ret, 1)
		writeU32(m, ret+4, ptr)
		writeU32(m, ret+8, n)
	})
	def("log", func(ctx context.Context, m api.Module, s []uint64) {
		f.record("log")
		level, levelOK := loadString(m, u32(s[0]), u32(s[1]))
		msg, msgOK := loadString(m, u32(s[2]), u32(s[3]))
		ret := u32(s[4])
		switch l := strings.ToLower(level); {
		case !levelOK || !msgOK:
			f.storeResult(ctx, m, ret, "log: level and message must be valid UTF-8")
		case l != "debug" && l != "info" && l != "warn" && l != "error":
			f.storeResult(ctx, m, ret, fmt.Sprintf("unknown log level %q: use debug, info, warn or error", level))
		default:
			f.mu.Lock()
			f.logs = append(f.logs, LogLine{Level: l, Message: msg})
			f.mu.Unlock()
			f.storeResult(ctx, m, ret, "")
		}
	})
	def("record-metric", func(ctx context.Context, m api.Module, s []uint64) {
		f.record("record-metric")
		name, nameOK := loadString(m, u32(s[0]), u32(s[1]))
		value := math.Float64frombits(s[2])
		ret := u32(s[3])
		switch {
		case !nameOK || name == "":
			f.storeResult(ctx, m, ret, "metric name must be a non-empty UTF-8 string")
		case math.IsNaN(value) || math.IsInf(value, 0):
			f.storeResult(ctx, m, ret, fmt.Sprintf("metric %s: value %v is not finite", name, value))
		default:
			f.mu.Lock()
			f.metrics = append(f.metrics, Metric{Name: name, Value: value})
			f.mu.Unlock()
			f.storeResult(ctx, m, ret, "")
		}
	})
	def("record-event", func(ctx context.Context, m api.Module, s []uint64) {
		f.record("record-event")
		typ, typOK := loadString(m, u32(s[0]), u32(s[1]))
		data := loadBytes(m, u32(s[2]), u32(s[3]))
		ret := u32(s[4])
		if !typOK || typ == "" {
			f.storeResult(ctx, m, ret, "event type must be a non-empty UTF-8 string")
			return
		}
		f.mu.Lock()
		f.events = append(f.events, Event{Type: typ, Data: data})
		f.mu.Unlock()
		f.storeResult(ctx, m, ret, "")
	})
	def("get-system-info", func(ctx context.Context, m api.Module, s []uint64) {
		f.record("get-system-info")
		ret := u32(s[0])
		si := f.SystemInfo
		// Lower all strings first: each may run the guest's allocator.
		hp, hn := f.lowerString(ctx, m, si.Hostname)
		tp, tn := f.lowerString(ctx, m, si.OSType)
		rp, rn := f.lowerString(ctx, m, si.OSRelease)
		area := make([]byte, 56)
		le := binary.LittleEndian
		le.PutUint32(area[0:], hp)
		le.PutUint32(area[4:], hn)
		le.PutUint32(area[8:], tp)
		le.PutUint32(area[12:], tn)
		le.PutUint32(area[16:], rp)
		le.PutUint32(area[20:], rn)
		le.PutUint32(area[24:], si.CPUCount)
		le.PutUint64(area[32:], si.MemoryTotal)
		le.PutUint64(area[40:], si.MemoryAvailable)
		le.PutUint64(area[48:], si.Uptime)
		if ret%8 != 0 {
			panic(fmt.Sprintf("get-system-info: return area %#x is not 8-byte aligned", ret))
		}
		write(m, ret, area)
	})
	def("shutdown", func(ctx context.Context, m api.Module, s []uint64) {
		f.record("shutdown")
		var data []byte
		switch u32(s[0]) {
		case 0:
		case 1:
			data = loadBytes(m, u32(s[1]), u32(s[2]))
			if data == nil {
				data = []byte{}
			}
		default:
			panic(fmt.Sprintf("shutdown: invalid option discriminant %d", u32(s[0])))
		}
		f.mu.Lock()
		f.shutdown = &data
		f.mu.Unlock()
		f.storeResult(ctx, m, u32(s[3]), "")
	})
	_, err := b.Instantiate(ctx)
	return err
}

// Memory helpers. A bad pointer or length from the guest panics, which
// wazero turns into a trap of the guest's call: this fake's guests are the
// project's own, so a bad pointer is a bug to surface, not input to survive.

func u32(v uint64) uint32 { return uint32(v) }

func loadBytes(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(fmt.Sprintf("guest passed %d bytes at %#x, past the end of its memory (%d bytes)", n, ptr, m.Memory().Size()))
	}
	return bytes.Clone(b)
}

func loadString(m api.Module, ptr, n uint32) (string, bool) {
	b := loadBytes(m, ptr, n)
	return string(b), utf8.Valid(b)
}

func write(m api.Module, ptr uint32, b []byte) {
	if !m.Memory().Write(ptr, b) {
		panic(fmt.Sprintf("writing %d bytes at %#x: past the end of guest memory", len(b), ptr))
	}
}

func writeU8(m api.Module, ptr uint32, v byte) {
	if !m.Memory().WriteByte(ptr, v) {
		panic(fmt.Sprintf("writing at %#x: past the end of guest memory", ptr))
	}
}

func writeU32(m api.Module, ptr, v uint32) {
	if !m.Memory().WriteUint32Le(ptr, v) {
		panic(fmt.Sprintf("writing at %#x: past the end of guest memory", ptr))
	}
}

// lowerString copies s into memory obtained from the guest's cabi_realloc.
func (f *FakeRuntime) lowerString(ctx context.Context, m api.Module, s string) (ptr, n uint32) {
	return f.lower(ctx, m, []byte(s))
}

// lower copies b into memory obtained from the guest's cabi_realloc, after
// the churn allocation when ReallocChurn asks for one.
func (f *FakeRuntime) lower(ctx context.Context, m api.Module, b []byte) (ptr, n uint32) {
	realloc := f.realloc(m)
	if f.ReallocChurn > 0 {
		lowerBytes(ctx, m, realloc, make([]byte, f.ReallocChurn), 8)
	}
	return lowerBytes(ctx, m, realloc, b, 1)
}

// realloc returns m's cabi_realloc, looked up once: wazero's
// ExportedFunction builds a new callable each time.
func (f *FakeRuntime) realloc(m api.Module) api.Function {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fn, ok := f.reallocs[m]; ok {
		return fn
	}
	fn := m.ExportedFunction(ReallocExport)
	if fn == nil {
		panic("guest does not export " + ReallocExport)
	}
	if f.reallocs == nil {
		f.reallocs = map[api.Module]api.Function{}
	}
	f.reallocs[m] = fn
	return fn
}

func lowerBytes(ctx context.Context, m api.Module, realloc api.Function, b []byte, align uint32) (ptr, n uint32) {
	res, err := realloc.Call(ctx, 0, 0, uint64(align), uint64(len(b)))
	if err != nil {
		panic(fmt.Sprintf("%s(0, 0, %d, %d): %v", ReallocExport, align, len(b), err))
	}
	ptr = uint32(res[0])
	if ptr%align != 0 {
		panic(fmt.Sprintf("%s returned %#x, not aligned to %d", ReallocExport, ptr, align))
	}
	write(m, ptr, b)
	return ptr, uint32(len(b))
}

// storeString writes a string result to the return area at ret: +0 ptr, +4 len.
func (f *FakeRuntime) storeString(ctx context.Context, m api.Module, ret uint32, s string) {
	ptr, n := f.lowerString(ctx, m, s)
	writeU32(m, ret, ptr)
	writeU32(m, ret+4, n)
}

// storeResult writes result<_, string> to the return area at ret: ok when
// errMsg is empty, else err(errMsg) with the string at +4/+8.
func (f *FakeRuntime) storeResult(ctx context.Context, m api.Module, ret uint32, errMsg string) {
	if errMsg == "" {
		writeU8(m, ret, 0)
		return
	}
	ptr, n := f.lowerString(ctx, m, errMsg)
	writeU8(m, ret, 1)
	writeU32(m, ret+4, ptr)
	writeU32(m, ret+8, n)
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

// Guest is one instance of an actor under a FakeRuntime, in its own wazero
// runtime with WASI preview 1 (real clocks and randomness, so Go guests' timers
// and maps work), instantiated the way the host does it: _initialize first
// when exported.
type Guest struct {
	Runtime *FakeRuntime
	r       wazero.Runtime
	mod     api.Module
	stdout  lockedBuffer
	stderr  lockedBuffer
}

// StartGuest instantiates wasm under fr and closes it when the test ends.
func StartGuest(t testing.TB, wasm []byte, fr *FakeRuntime) *Guest {
	t.Helper()
	ctx := context.Background()
	g, err := NewGuest(ctx, wasm, fr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(ctx) })
	return g
}

// NewGuest instantiates wasm under fr. Close it when done.
func NewGuest(ctx context.Context, wasm []byte, fr *FakeRuntime) (*Guest, error) {
	g := &Guest{Runtime: fr}
	g.r = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(compilationCache).
		WithCloseOnContextDone(true))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, g.r); err != nil {
		g.r.Close(ctx)
		return nil, fmt.Errorf("instantiating WASI: %w", err)
	}
	if err := fr.hostModule(ctx, g.r); err != nil {
		g.r.Close(ctx)
		return nil, fmt.Errorf("instantiating the fake %s: %w", RuntimeModule, err)
	}
	compiled, err := g.r.CompileModule(ctx, wasm)
	if err != nil {
		g.r.Close(ctx)
		return nil, fmt.Errorf("compiling the actor: %w", err)
	}
	g.mod, err = g.r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().
		WithName("actor").
		WithStartFunctions(InitializeFunc).
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
	return g.call(ctx, InitExport, PostInitExport, state, hasState, func(args []uint64) ([]uint64, error) {
		ip, in, err := g.lowerString(ctx, actorID)
		return append(args, uint64(ip), uint64(in)), err
	})
}

// Tick calls the optional troupe:actor/ticker#tick as the host does, with
// the state and the host's time in ms since the epoch; like Init otherwise.
// It fails when the actor does not export tick.
func (g *Guest) Tick(ctx context.Context, state []byte, hasState bool, now time.Time) (newState []byte, hasNewState bool, err error) {
	return g.call(ctx, TickExport, PostTickExport, state, hasState, func(args []uint64) ([]uint64, error) {
		return append(args, uint64(now.UnixMilli())), nil
	})
}

// call lowers the state, appends the rest of the arguments, calls export,
// lifts its result<tuple<option<list<u8>>>, string> and runs post when the
// actor exports it.
func (g *Guest) call(ctx context.Context, export, post string, state []byte, hasState bool,
	rest func(args []uint64) ([]uint64, error)) (newState []byte, hasNewState bool, err error) {
	fn := g.mod.ExportedFunction(export)
	if fn == nil {
		return nil, false, errors.New("actor does not export " + export)
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
		return nil, false, fmt.Errorf("calling %s: %w (stderr: %s)", export, err, g.stderr.String())
	}
	ret := uint32(out[0])
	newState, hasNewState, err = liftResult(g.mod.Memory(), ret, export)
	if postFn := g.mod.ExportedFunction(post); postFn != nil {
		if _, perr := postFn.Call(ctx, uint64(ret)); perr != nil {
			return nil, false, fmt.Errorf("calling %s: %w", post, perr)
		}
	}
	return newState, hasNewState, err
}

// lower copies b into the guest's memory from its cabi_realloc, turning the
// fake's panics (a bad allocator answer) into an error.
func (g *Guest) lower(ctx context.Context, b []byte) (ptr, n uint32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("lowering an argument: %v", r)
		}
	}()
	ptr, n = g.Runtime.lower(ctx, g.mod, b)
	return ptr, n, nil
}

func (g *Guest) lowerString(ctx context.Context, s string) (ptr, n uint32, err error) {
	return g.lower(ctx, []byte(s))
}

// liftResult reads result<tuple<option<list<u8>>>, string>, which export
// returned a pointer to: +0 u8 discriminant; ok: +4 u8 option
// discriminant, +8 ptr, +12 len; err: +4 ptr, +8 len. An err is an
// *InitError (for init and tick alike).
func liftResult(mem api.Memory, ret uint32, export string) ([]byte, bool, error) {
	if ret%4 != 0 {
		return nil, false, fmt.Errorf("%s returned %#x, not 4-byte aligned", export, ret)
	}
	area, ok := mem.Read(ret, 16)
	if !ok {
		return nil, false, fmt.Errorf("%s returned %#x, past the end of memory", export, ret)
	}
	le := binary.LittleEndian
	switch area[0] {
	case 0:
		switch area[4] {
		case 0:
			return nil, false, nil
		case 1:
			b, ok := mem.Read(le.Uint32(area[8:]), le.Uint32(area[12:]))
			if !ok {
				return nil, false, fmt.Errorf("%s's new state (%d bytes at %#x) is past the end of memory", export, le.Uint32(area[12:]), le.Uint32(area[8:]))
			}
			return bytes.Clone(b), true, nil
		default:
			return nil, false, fmt.Errorf("%s returned option discriminant %d", export, area[4])
		}
	case 1:
		b, ok := mem.Read(le.Uint32(area[4:]), le.Uint32(area[8:]))
		if !ok {
			return nil, false, fmt.Errorf("%s's error message (%d bytes at %#x) is past the end of memory", export, le.Uint32(area[8:]), le.Uint32(area[4:]))
		}
		if !utf8.Valid(b) {
			return nil, false, fmt.Errorf("%s's error message is not valid UTF-8", export)
		}
		return nil, false, &InitError{Message: string(b)}
	default:
		return nil, false, fmt.Errorf("%s returned result discriminant %d", export, area[0])
	}
}

// lockedBuffer is a bytes.Buffer safe for the guest and the test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
