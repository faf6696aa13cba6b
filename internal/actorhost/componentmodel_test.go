package actorhost

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/wasmcheck"
)

// newComponentEngine is a test engine with an on-disk compilation cache
// shared by test runs: a componentize-js main module (12 MB) takes 10 to
// 60 s to compile cold, under a second from the cache.
func newComponentEngine(t testing.TB) (*Engine, *logSink) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "wazero")
	if base, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(base, "troupe", "testutil-wazero")
	}
	sink := &logSink{}
	logger := sink.logger()
	if _, bench := t.(*testing.B); bench {
		logger = logr.Discard()
	}
	e, err := NewEngine(context.Background(), EngineOptions{CacheDir: dir, Logger: logger,
		SystemInfo: fixedSystemInfo{}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("closing engine: %v", err)
		}
	})
	return e, sink
}

// TestComponentsRun runs components made by the real toolchains, unchanged,
// twice in the same directory: each logs (through the runtime, and through
// stdout and stderr), records its events and metrics, and the second run
// resumes the first's state. ActorStart records the component's digest,
// that it was a component, and the main module that ran.
func TestComponentsRun(t *testing.T) {
	tests := map[string]struct {
		component func(t *testing.T) []byte
		env       runtimehandler.MapEnv
		initial   []byte
		states    [2]string
		// logs are lines each run writes; events and metrics, the types
		// and names each records.
		logs            []string
		events, metrics []string
	}{
		// wit-component with no adapter (the shape of cargo-component's
		// wasm32-unknown-unknown): the runtime handler only.
		"wat-actor": {
			component: func(t *testing.T) []byte { return testutil.TestComponent(t, "wat-actor") },
			env:       runtimehandler.MapEnv{"WAT_GREETING": {Value: "hi"}},
			states:    [2]string{"\x01", "\x02"},
			logs:      []string{`"message":"hi"`},
			events:    []string{"wat-name", "wat-version"},
			metrics:   []string{"wat_time_ms", "wat_cpu_count"},
		},
		// The preview1 adapter, dropped: preview1 is served natively.
		"adapted": {
			component: func(t *testing.T) []byte { return testutil.TestComponent(t, "adapted") },
			states:    [2]string{"+", "++"},
			logs:      []string{"stdout via fd_write\"", "stdout via fd_write [v2]", "adapted init"},
		},
		// The Go example with the reactor adapter: it can't initialise
		// inside the component (the adapter allocates with Go's
		// cabi_realloc before Go's runtime has started); reduced, it runs.
		"go-hello": {
			component: func(t *testing.T) []byte { return testutil.BuiltComponent(t, "go-hello") },
			env:       runtimehandler.MapEnv{"GREETING": {Value: "Howdy"}},
			initial:   []byte(`{"count":0}`),
			states:    [2]string{`{"count":1}`, `{"count":2}`},
			logs:      []string{"Howdy from go-hello ("},
			events:    []string{"greeted"},
		},
		// componentize-js with its WASI features: console.log and
		// console.error through WASI 0.2's stdout and stderr, Math.random,
		// Date.now and performance.now through its random and clocks.
		"js-hello": {
			component: func(t *testing.T) []byte { return testutil.BuiltComponent(t, "js-hello") },
			env:       runtimehandler.MapEnv{"GREETING": {Value: "Howdy"}},
			initial:   []byte(`{"count":0}`),
			states:    [2]string{`{"count":1}`, `{"count":2}`},
			logs: []string{"Howdy from js-hello (", "js-hello: js-hello writes to stderr too",
				"through the runtime"},
			events:  []string{"greeted"},
			metrics: []string{"js_hello_init_ms"},
		},
		// componentize-js without WASI: the runtime only.
		"js-hello-pure": {
			component: func(t *testing.T) []byte { return testutil.BuiltComponent(t, "js-hello-pure") },
			initial:   []byte(`{"count":0}`),
			states:    [2]string{`{"count":1}`, `{"count":2}`},
			logs:      []string{"through the runtime"},
			events:    []string{"greeted"},
			metrics:   []string{"js_hello_init_ms"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			comp := tc.component(t)
			e, sink := newComponentEngine(t)
			c, err := e.Compile(context.Background(), comp)
			if err != nil {
				t.Fatal(err)
			}
			digest := sha256.Sum256(comp)
			if !c.IsComponent() || c.Digest() != "sha256:"+hex.EncodeToString(digest[:]) || c.MainModuleDigest() == c.Digest() {
				t.Fatalf("IsComponent %v, digest %s, main module %s", c.IsComponent(), c.Digest(), c.MainModuleDigest())
			}
			dir := t.TempDir()
			for run, want := range tc.states {
				a, err := e.Start(context.Background(), ActorConfig{Name: name, Component: c, Env: tc.env,
					InitialState: tc.initial, Dir: dir})
				if err != nil {
					t.Fatalf("run %d: %v\nlog:\n%s", run+1, err, strings.Join(sink.lines, "\n"))
				}
				if got := string(a.State()); got != want {
					t.Errorf("run %d: state %q, want %q", run+1, got, want)
				}
				evs := lastRun(events(t, a))
				if err := a.Stop(context.Background(), "test run over"); err != nil {
					t.Fatal(err)
				}
				_, start, _ := findEvent(evs, chain.KindActorStart)
				if start["format"] != "component" || start["component"] != c.Digest() || start["mainModule"] != c.MainModuleDigest() ||
					start["resumed"] != (run == 1) {
					t.Errorf("run %d: ActorStart %v", run+1, start)
				}
				for _, l := range tc.logs {
					if !hasEvent(evs, chain.KindLog, l) {
						t.Errorf("run %d: no LogEvent with %q", run+1, l)
					}
				}
				for _, ev := range tc.events {
					if !hasEvent(evs, chain.KindCustom, `"type":"`+ev+`"`) {
						t.Errorf("run %d: no CustomEvent %q", run+1, ev)
					}
				}
				for _, m := range tc.metrics {
					if !hasEvent(evs, chain.KindMetric, `"name":"`+m+`"`) {
						t.Errorf("run %d: no MetricEvent %q", run+1, m)
					}
				}
			}
		})
	}
}

// lastRun is the events of the last run: from the last ActorStart on.
func lastRun(evs []chain.Event) []chain.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == chain.KindActorStart {
			return evs[i:]
		}
	}
	return nil
}

func hasEvent(evs []chain.Event, kind chain.Kind, sub string) bool {
	for _, ev := range evs {
		if ev.Kind == kind && strings.Contains(string(ev.Data), sub) {
			return true
		}
	}
	return false
}

// TestComponentRefusedAtCompile: a component of a shape the engine does
// not run, a broken one, or one over the bounds fails Compile as
// InvalidModule saying what, never later.
func TestComponentRefusedAtCompile(t *testing.T) {
	wat := testutil.TestComponent(t, "wat-actor")
	tests := map[string]struct {
		b      []byte
		limits *wasmcheck.Limits
		want   string
	}{
		"exports nothing": {b: []byte("\x00asm\x0d\x00\x01\x00"),
			want: "unsupported component shape: exports no function"},
		"an older draft": {b: []byte("\x00asm\x0c\x00\x01\x00"),
			want: "unsupported component shape: component binary version 0x0c"},
		"cut short": {b: wat[:len(wat)-5], want: "not a valid WebAssembly component: malformed component at byte"},
		"over the size bound": {b: wat, limits: &wasmcheck.Limits{ModuleBytes: 1000},
			want: "the component is 5723 bytes, more than the 1000 allowed"},
		// The main module is held to every bound of a module.
		"main module over a bound": {b: wat, limits: withFunctions(wasmcheck.Default, 1),
			want: "the component's main module: "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Limits: tc.limits})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(context.Background())
			_, err = e.Compile(context.Background(), tc.b)
			var ae *ActorError
			if !errors.As(err, &ae) || ae.Reason != ReasonInvalidModule || !strings.HasPrefix(ae.Message, tc.want) {
				t.Fatalf("compile: %v, want InvalidModule: %s...", err, tc.want)
			}
		})
	}
}

func withFunctions(l wasmcheck.Limits, n uint32) *wasmcheck.Limits {
	l.Functions = n
	return &l
}

// TestComponentCompileIsKeyedOnItsDigest: the same component compiles once;
// a component and its own main module are different entries (the
// component's ActorStart says what it was).
func TestComponentCompileIsKeyedOnItsDigest(t *testing.T) {
	e, _ := newTestEngine(t)
	comp := testutil.TestComponent(t, "wat-actor")
	c1, err := e.Compile(context.Background(), comp)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := e.Compile(context.Background(), append([]byte(nil), comp...))
	if err != nil {
		t.Fatal(err)
	}
	if c1 != c2 {
		t.Error("the same component compiled twice")
	}
	core, err := e.Compile(context.Background(), testutil.TestActor(t, "wat-actor"))
	if err != nil {
		t.Fatal(err)
	}
	if core == c1 || core.IsComponent() || core.MainModuleDigest() != core.Digest() {
		t.Errorf("the core module: IsComponent %v, digest %s, main module %s", core.IsComponent(), core.Digest(), core.MainModuleDigest())
	}
}

// TestComponentsTick runs components of the ticking world on the engine's
// ticker: init, then ticks until the state shows them.
func TestComponentsTick(t *testing.T) {
	tests := map[string]struct {
		component func(t *testing.T) []byte
		state     []byte
		// change, when set, is made once init has returned; ticked tells
		// the state ticks made.
		change func(env *mutableEnv)
		ticked func(state []byte) bool
	}{
		// tick.wat's mode "c" counts ticks in the u32 at +4.
		"tick": {
			component: func(t *testing.T) []byte { return testutil.TestComponent(t, "tick") },
			state:     append([]byte("c"), make([]byte, 15)...),
			ticked: func(s []byte) bool {
				return len(s) == 16 && binary.LittleEndian.Uint32(s[4:]) >= 2
			},
		},
		// feature-flags reads its flag again at every tick: the state
		// follows an edit of its env without a restart.
		"go-feature-flags": {
			component: func(t *testing.T) []byte { return testutil.BuiltComponent(t, "go-feature-flags") },
			change:    func(env *mutableEnv) { env.set("FEATURE_NEW_UI", "true") },
			ticked:    func(s []byte) bool { return string(s) == "new-ui" },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, sink := newComponentEngine(t)
			c, err := e.Compile(context.Background(), tc.component(t))
			if err != nil {
				t.Fatal(err)
			}
			if !c.Ticks() {
				t.Fatal("the component's main module does not export tick")
			}
			env := &mutableEnv{m: runtimehandler.MapEnv{}}
			a := start(t, e, ActorConfig{Name: name, Component: c, Env: env, InitialState: tc.state,
				TickInterval: limits.MinTickInterval})
			if tc.change != nil {
				tc.change(env)
			}
			deadline := time.Now().Add(30 * time.Second)
			for !tc.ticked(a.State()) {
				if time.Now().After(deadline) {
					t.Fatalf("%d ticks, state %q after 30s; log:\n%s", a.Ticks(), a.State(), strings.Join(sink.lines, "\n"))
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestJSActorAnswersRequests cross-checks the message ABI with a real
// toolchain: js-counter (componentize-js, world message-actor) counts the
// messages sent to it, answers requests with its request id, asks and
// tells another actor through message-server-host, and fails a request
// with its error string.
func TestJSActorAnswersRequests(t *testing.T) {
	comp := testutil.BuiltComponent(t, "js-counter")
	e, sink := newComponentEngine(t)
	ctx := context.Background()
	c, err := e.Compile(ctx, comp)
	if err != nil {
		t.Fatal(err)
	}
	if send, req := c.HandlesMessages(); !send || !req {
		t.Fatalf("handles sends: %v, requests: %v", send, req)
	}
	counter := start(t, e, ActorConfig{Name: "counter", Component: c, Dir: t.TempDir()})
	other := start(t, e, ActorConfig{Name: "other", Component: c, Dir: t.TempDir()})
	for _, m := range []string{"one", "two", "three"} {
		if err := e.Send(ctx, Delivery{From: cli, Target: "counter", Msg: []byte(m)}); err != nil {
			t.Fatal(err)
		}
	}
	const id = "0b5d6c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
	resp, err := e.Request(ctx, Delivery{From: cli, Target: "counter", Msg: []byte("how many?"), ID: id})
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, strings.Join(sink.lines, "\n"))
	}
	// The sends were queued before the request: all three are counted.
	if want := `{"id":"` + id + `","count":3,"last":"three","echo":"how many?"}`; string(resp) != want {
		t.Errorf("response %s, want %s", resp, want)
	}
	if got := string(counter.State()); got != `{"count":3,"last":"three"}` {
		t.Errorf("state %s", got)
	}
	// An actor's own request and send, through the host's imports.
	resp, err = e.Request(ctx, Delivery{From: cli, Target: "counter", Msg: []byte("ask:other")})
	if err != nil || !strings.HasPrefix(string(resp), `forwarded: {"id":"`) || !strings.Contains(string(resp), `"echo":"from js-counter"`) {
		t.Errorf("ask: %q, %v", resp, err)
	}
	if resp, err = e.Request(ctx, Delivery{From: cli, Target: "counter", Msg: []byte("tell:" + other.ID())}); err != nil || string(resp) != "told" {
		t.Errorf("tell: %q, %v", resp, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for string(other.State()) != `{"count":1,"last":"told by js-counter"}` {
		if time.Now().After(deadline) {
			t.Fatalf("the other actor's state is %s", other.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A request the actor fails: the requester gets its error string,
	// and the actor fails, as for a failed tick (wit/theater-message.wit).
	_, err = e.Request(ctx, Delivery{From: cli, Target: "counter", Msg: []byte("fail")})
	if err == nil || !strings.Contains(err.Error(), "js-counter: asked to fail request") {
		t.Errorf("a failed request: %v", err)
	}
}

// BenchmarkComponentWarmStart measures a warm start (compiled already:
// instantiate, _initialize, init, chain events in memory) of components
// against the core modules they wrap, in the same run. Target: a
// component's start costs at most 10% more than its main module's (it is
// its main module; only the WASI 0.2 host module, if any, is extra).
// docs/performance.md has the figures.
func BenchmarkComponentWarmStart(b *testing.B) {
	wasm := map[string]func(b *testing.B) []byte{
		"wat/module":    func(b *testing.B) []byte { return testutil.TestActor(b, "wat-actor") },
		"wat/component": func(b *testing.B) []byte { return testutil.TestComponent(b, "wat-actor") },
		"go-hello/module": func(b *testing.B) []byte {
			if testing.Short() {
				b.Skip("builds examples/hello with the Go toolchain")
			}
			return testutil.BuildExample(b, "hello")
		},
		"go-hello/component": func(b *testing.B) []byte { return testutil.BuiltComponent(b, "go-hello") },
		"js-hello/component": func(b *testing.B) []byte { return testutil.BuiltComponent(b, "js-hello") },
	}
	for _, name := range []string{"wat/module", "wat/component", "go-hello/module", "go-hello/component", "js-hello/component"} {
		b.Run(name, func(b *testing.B) {
			e, _ := newComponentEngine(b)
			c, err := e.Compile(context.Background(), wasm[name](b))
			if err != nil {
				b.Fatal(err)
			}
			cfg := ActorConfig{Name: "bench", Component: c, MemoryChainRetain: 16,
				Env: runtimehandler.MapEnv{"WAT_GREETING": {Value: "hi"}}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				a, err := e.Start(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := a.Stop(context.Background(), "bench"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
