package runtimehandler

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/chain"
)

// Fixed addresses in guest.wasm's memory that the tests use.
const (
	retArea  = 16   // return area, aligned to 8
	argArea  = 1024 // arguments written by the test
	argArea2 = 8192 // a second argument
)

// fixedTime is the clock of test actors: 2026-01-02T03:04:05.678Z.
var fixedTime = time.UnixMilli(1767323045678)

// logCapture collects what a funcr logger emits.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (c *logCapture) logger() logr.Logger {
	return funcr.NewJSON(func(obj string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.lines = append(c.lines, obj)
	}, funcr.Options{Verbosity: 1, LogInfoLevel: ptr("v")})
}

func (c *logCapture) all() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, l := range c.lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			panic(err)
		}
		out = append(out, m)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// fakeSys is a SystemInfoSource with fixed answers.
type fakeSys struct {
	info  SystemInfo
	err   error
	calls int
	mu    sync.Mutex
}

func (f *fakeSys) SystemInfo(context.Context) (SystemInfo, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	return f.info, f.err
}

var testSysInfo = SystemInfo{
	Hostname: "node-1", OSType: "linux", OSRelease: "6.1.0-test",
	CPUCount: 8, MemoryTotal: 16 << 30, MemoryAvailable: 9 << 30, Uptime: 123456,
}

// harness runs one test guest with one actor on a fresh runtime.
type harness struct {
	t       *testing.T
	ctx     context.Context
	r       wazero.Runtime
	mod     api.Module
	actor   *Actor
	chain   *chain.Chain
	logs    *logCapture
	metrics *MetricsRegistry
	sys     *fakeSys
}

type harnessOpt func(*ActorOptions)

func loadWasm(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("reading test guest: %v", err)
	}
	return b
}

func newHarness(t *testing.T, wasm string, opts ...harnessOpt) *harness {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	t.Cleanup(func() { r.Close(ctx) })
	if _, err := Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	// What wasi02.wasm imports (other guests import none of it).
	if _, err := InstantiateWASI(ctx, r, "troupe:wasi@0.2/test", testWASIImports); err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t: t, r: r, logs: &logCapture{}, metrics: NewMetricsRegistry(0),
		chain: chain.NewMemory(chain.Options{}),
		sys:   &fakeSys{info: testSysInfo},
	}
	o := ActorOptions{
		ID: "3f2c1f9e-0d7a-4c53-9a7e-5b1d2c3e4f50", Name: "hello", Namespace: "default",
		Env: MapEnv{
			"GREETING":    {Value: "hi there"},
			"DB_PASSWORD": {Value: "hunter2", Secret: true},
			"EMPTY":       {Value: ""},
		},
		SystemInfo: h.sys,
		Chain:      h.chain,
		Metrics:    h.metrics,
		Logger:     h.logs.logger(),
		Version:    "v1.2.3-test",
		Now:        func() time.Time { return fixedTime },
	}
	for _, opt := range opts {
		opt(&o)
	}
	a, err := NewActor(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	h.actor = a
	h.ctx = WithActor(ctx, a)
	mod, err := r.InstantiateWithConfig(ctx, loadWasm(t, wasm), wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	h.mod = mod
	return h
}

// call calls an export of the guest with ctx bound to the actor.
func (h *harness) call(name string, params ...uint64) ([]uint64, error) {
	h.t.Helper()
	fn := h.mod.ExportedFunction(name)
	if fn == nil {
		h.t.Fatalf("guest exports no %s", name)
	}
	return fn.Call(h.ctx, params...)
}

// mustCall is call that fails the test on a trap.
func (h *harness) mustCall(name string, params ...uint64) []uint64 {
	h.t.Helper()
	res, err := h.call(name, params...)
	if err != nil {
		h.t.Fatalf("%s: %v", name, err)
	}
	return res
}

// trapCall calls and requires a *TrapError whose reason contains want.
func (h *harness) trapCall(want string, name string, params ...uint64) *TrapError {
	h.t.Helper()
	_, err := h.call(name, params...)
	var te *TrapError
	if !errors.As(err, &te) {
		h.t.Fatalf("%s: want a *TrapError, got %v", name, err)
	}
	if !strings.Contains(te.Error(), want) {
		h.t.Fatalf("%s: trap %q does not mention %q", name, te.Error(), want)
	}
	return te
}

func (h *harness) write(at uint32, b []byte) {
	h.t.Helper()
	if !h.mod.Memory().Write(at, b) {
		h.t.Fatalf("writing %d bytes at %d", len(b), at)
	}
}

func (h *harness) writeStr(at uint32, s string) (uint64, uint64) {
	h.write(at, []byte(s))
	return uint64(at), uint64(len(s))
}

func (h *harness) u8(at uint32) byte {
	b, ok := h.mod.Memory().ReadByte(at)
	if !ok {
		h.t.Fatalf("reading byte at %d", at)
	}
	return b
}

func (h *harness) u32(at uint32) uint32 {
	b, ok := h.mod.Memory().Read(at, 4)
	if !ok {
		h.t.Fatalf("reading u32 at %d", at)
	}
	return binary.LittleEndian.Uint32(b)
}

func (h *harness) u64(at uint32) uint64 {
	b, ok := h.mod.Memory().Read(at, 8)
	if !ok {
		h.t.Fatalf("reading u64 at %d", at)
	}
	return binary.LittleEndian.Uint64(b)
}

// str reads the (ptr, len) pair at `at` and the string it points to.
func (h *harness) str(at uint32) string {
	p, n := h.u32(at), h.u32(at+4)
	b, ok := h.mod.Memory().Read(p, n)
	if !ok {
		h.t.Fatalf("string (%d, %d) outside memory", p, n)
	}
	return string(b)
}

// resultErr reads a result<_, string> at retArea: "" for ok.
func (h *harness) resultErr() (string, bool) {
	switch d := h.u8(retArea); d {
	case 0:
		return "", false
	case 1:
		return h.str(retArea + 4), true
	default:
		h.t.Fatalf("result discriminant %d", d)
		return "", false
	}
}

// events returns the actor's chain.
func (h *harness) events() []chain.Event {
	var out []chain.Event
	if err := h.chain.Events(func(e chain.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// last returns the last event, decoding its data.
func (h *harness) last() (chain.Event, map[string]any) {
	h.t.Helper()
	evs := h.events()
	if len(evs) == 0 {
		h.t.Fatal("chain is empty")
	}
	e := evs[len(evs)-1]
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		h.t.Fatalf("event data %q is not JSON: %v", e.Data, err)
	}
	return e, m
}

// f64bits encodes a float parameter for api.Function.Call.
func f64bits(v float64) uint64 { return api.EncodeF64(v) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func readTestdata(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }
