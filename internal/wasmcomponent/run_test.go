package wasmcomponent_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/wasmcomponent"
)

// These tests prove the design on today's engine, unchanged: the main
// module a component reduces to compiles and runs under actorhost with the
// runtime handler and the engine's native WASI preview 1 (which calls
// _initialize itself), whether the component had no adapter, the preview1
// adapter (dropped), or was built by componentize-js without WASI.

// lines collects log lines.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (s *lines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		s.l = append(s.l, prefix+" "+args)
		s.mu.Unlock()
	}, funcr.Options{})
}

func (s *lines) with(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.l {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func (s *lines) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.l, "\n")
}

// newEngine is an engine with the test compilation cache on disk (a JS
// component's main module takes tens of seconds to compile cold).
func newEngine(t *testing.T) (*actorhost.Engine, *lines) {
	t.Helper()
	log := &lines{}
	dir := t.TempDir()
	if base, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(base, "troupe", "testutil-wazero")
	}
	e, err := actorhost.NewEngine(context.Background(), actorhost.EngineOptions{CacheDir: dir, Logger: log.logger(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("closing the engine: %v", err)
		}
	})
	return e, log
}

// runReduced reduces comp, compiles its main module, and starts it twice
// in the same directory (the second run resumes the first's state); it
// returns the two states.
func runReduced(t *testing.T, comp []byte, cfg actorhost.ActorConfig) (*actorhost.Engine, *lines, [2][]byte) {
	t.Helper()
	r, err := wasmcomponent.Reduce(comp)
	if err != nil {
		t.Fatal(err)
	}
	e, log := newEngine(t)
	c, err := e.Compile(context.Background(), r.Module)
	if err != nil {
		t.Fatalf("compiling the reduced module: %v", err)
	}
	cfg.Component, cfg.Dir = c, t.TempDir()
	cfg.Logger = log.logger()
	var states [2][]byte
	for i := range states {
		a, err := e.Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("run %d: %v\nlog:\n%s", i+1, err, log)
		}
		states[i] = a.State()
		if err := a.Stop(context.Background(), "test run over"); err != nil {
			t.Fatal(err)
		}
	}
	return e, log, states
}

func TestReducedRunsOnTheEngine(t *testing.T) {
	tests := map[string]struct {
		component func(t *testing.T) []byte
		cfg       actorhost.ActorConfig
		states    [2]string
		// logs are lines each run writes (so twice in the log).
		logs []string
	}{
		// wit-component with no adapter: only the runtime handler.
		"wat-actor": {
			component: func(t *testing.T) []byte { return testutil.TestComponent(t, "wat-actor") },
			cfg:       actorhost.ActorConfig{Name: "wat"},
			states:    [2]string{"\x01", "\x02"},
			logs:      []string{"no WAT_GREETING set"},
		},
		// The preview1 adapter dropped, preview1 served natively, and
		// "fd_write [v2]" bound to fd_write.
		"adapted": {
			component: func(t *testing.T) []byte { return testutil.TestComponent(t, "adapted") },
			cfg:       actorhost.ActorConfig{Name: "adapted"},
			states:    [2]string{"+", "++"},
			logs:      []string{"stdout via fd_write\"", "stdout via fd_write [v2]", "adapted init"},
		},
		// A Go example (-buildmode=c-shared) with the reactor adapter:
		// inside the component its _initialize cannot run (the adapter
		// allocates with Go's cabi_realloc before Go's runtime started);
		// reduced, the engine calls _initialize first, as for any
		// reactor.
		"go-hello": {
			component: func(t *testing.T) []byte { return testutil.BuiltComponent(t, "go-hello") },
			cfg: actorhost.ActorConfig{Name: "hello", InitialState: []byte(`{"count":0}`),
				Env: runtimehandler.MapEnv{"GREETING": {Value: "Howdy"}}},
			states: [2]string{`{"count":1}`, `{"count":2}`},
			logs:   []string{"Howdy from hello"},
		},
		// componentize-js with every WASI feature disabled imports only
		// the runtime: it runs today, logging through the runtime only.
		"js-hello-pure": {
			component: func(t *testing.T) []byte { return testutil.BuiltComponent(t, "js-hello-pure") },
			cfg: actorhost.ActorConfig{Name: "js-hello", InitialState: []byte(`{"count":0}`),
				Env: runtimehandler.MapEnv{"GREETING": {Value: "Howdy"}}},
			states: [2]string{`{"count":1}`, `{"count":2}`},
			logs:   []string{"Howdy from js-hello", "through the runtime"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			comp := tc.component(t)
			_, log, states := runReduced(t, comp, tc.cfg)
			for i, want := range tc.states {
				if string(states[i]) != want {
					t.Errorf("run %d saved state %q, want %q", i+1, states[i], want)
				}
			}
			for _, l := range tc.logs {
				if n := log.with(l); n != 2 {
					t.Errorf("%d log lines with %q, want one a run; log:\n%s", n, l, log)
				}
			}
		})
	}
}

// TestReducedTicks runs components of the ticking world on the engine's
// ticker, unchanged: init, then ticks until the state shows them.
func TestReducedTicks(t *testing.T) {
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
			r, err := wasmcomponent.Reduce(tc.component(t))
			if err != nil {
				t.Fatal(err)
			}
			e, log := newEngine(t)
			c, err := e.Compile(context.Background(), r.Module)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Ticks() {
				t.Fatal("the reduced module does not export tick")
			}
			env := &mutableEnv{m: runtimehandler.MapEnv{}}
			a, err := e.Start(context.Background(), actorhost.ActorConfig{Name: name, Component: c, Env: env,
				InitialState: tc.state, TickInterval: 100 * time.Millisecond, Logger: log.logger()})
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log)
			}
			defer a.Stop(context.Background(), "test over")
			if tc.change != nil {
				tc.change(env)
			}
			deadline := time.Now().Add(30 * time.Second)
			for !tc.ticked(a.State()) {
				if time.Now().After(deadline) {
					t.Fatalf("%d ticks, state %q after 30s; log:\n%s", a.Ticks(), a.State(), log)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// mutableEnv is an env the test edits while the actor runs, as the host's
// is when a ConfigMap changes.
type mutableEnv struct {
	mu sync.Mutex
	m  runtimehandler.MapEnv
}

func (e *mutableEnv) LookupEnv(name string) (runtimehandler.EnvValue, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.m[name]
	return v, ok
}

func (e *mutableEnv) SecretValues() []string { return nil }

func (e *mutableEnv) set(name, value string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[name] = runtimehandler.EnvValue{Value: value}
}
