package actorhost

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// TestGoExamples runs every example actor (built with the Go SDK) through
// the engine: init returns ok and the state is saved.
func TestGoExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the examples with the Go toolchain")
	}
	tests := map[string]struct {
		env       runtimehandler.MapEnv
		initState []byte
		logLine   string
		state     string // a substring of the new state, "" for any
	}{
		"hello":              {env: runtimehandler.MapEnv{"GREETING": {Value: "Hi"}}, initState: []byte(`{"count":0}`), logLine: "Hi from hello", state: `"count":1`},
		"feature-flags":      {env: runtimehandler.MapEnv{"FEATURE_NEW_UI": {Value: "true"}}},
		"monitoring":         {},
		"structured-logging": {},
		"counter":            {initState: []byte(`{"count":4}`), logLine: "counter ready at 4", state: `"count":4`},
		"counter-client":     {env: runtimehandler.MapEnv{"COUNTER": {Value: "counter"}}, logLine: "asks counter", state: `"asked":0`},
	}
	e, sink := newTestEngine(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := e.Compile(context.Background(), testutil.BuildExample(t, name))
			if err != nil {
				t.Fatal(err)
			}
			a, err := e.Start(context.Background(), ActorConfig{Name: name, Component: c, Env: tc.env,
				InitialState: tc.initState, Dir: t.TempDir()})
			if err != nil {
				t.Fatalf("%s failed: %v", name, err)
			}
			defer a.Stop(context.Background(), "test over")
			if tc.logLine != "" && !sink.contains(tc.logLine) {
				t.Errorf("no log line with %q", tc.logLine)
			}
			if !strings.Contains(string(a.State()), tc.state) {
				t.Errorf("state %q lacks %q", a.State(), tc.state)
			}
			_, res, _ := findEvent(events(t, a), chain.KindInitResult)
			if res["ok"] != true {
				t.Errorf("InitResult = %v", res)
			}
			untouchedByBudget(t, a)
		})
	}
}

// untouchedByBudget fails the test if the actor, under the default disk
// budget, ever waited for it: the defaults must let the examples (the
// seed's use cases) run as if there were none.
func untouchedByBudget(t *testing.T, a *Actor) {
	t.Helper()
	if l := a.budget.Limits(); l != diskbudget.DefaultLimits() {
		t.Fatalf("the actor runs under %+v, not the default disk budget", l)
	}
	if w := a.budget.Waited(); w != 0 {
		t.Errorf("the actor waited %s for the default disk budget: the defaults throttle an example", w)
	}
	if d := a.budget.Backlog(); d != 0 {
		t.Errorf("the actor is %s in debt to the default disk budget", d)
	}
}

// TestHelloCountsAcrossRestarts is the README's promise: the count in
// hello's state survives a restart.
func TestHelloCountsAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the examples with the Go toolchain")
	}
	e, _ := newTestEngine(t)
	c, err := e.Compile(context.Background(), testutil.BuildExample(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := ActorConfig{Name: "hello", Component: c, Dir: t.TempDir()}
	a := start(t, e, cfg)
	for want := 2; want <= 3; want++ {
		if err := a.Stop(context.Background(), "again"); err != nil {
			t.Fatal(err)
		}
		a = start(t, e, cfg)
		var s struct{ Count int }
		if err := json.Unmarshal(a.State(), &s); err != nil || s.Count != want {
			t.Fatalf("state %q, want count %d", a.State(), want)
		}
	}
}

// mutableEnv is an EnvSource whose values the test changes while the actor
// runs, as the host's does when a ConfigMap is edited.
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

func (e *mutableEnv) SecretValues() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m.SecretValues()
}

func (e *mutableEnv) set(name, value string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[name] = runtimehandler.EnvValue{Value: value}
}

// featurePaths returns the paths of the actor's feature_path events, in
// order, as "trigger:path".
func featurePaths(t *testing.T, a *Actor) []string {
	t.Helper()
	var paths []string
	for _, ev := range events(t, a) {
		if ev.Kind != chain.KindCustom {
			continue
		}
		var rec struct {
			Type string
			Data []byte
		}
		if err := json.Unmarshal(ev.Data, &rec); err != nil {
			t.Fatalf("CustomEvent %s: %v", ev.Data, err)
		}
		if rec.Type != "feature_path" {
			continue
		}
		var d struct{ Path, Trigger string }
		if err := json.Unmarshal(rec.Data, &d); err != nil {
			t.Fatalf("feature_path data %q: %v", rec.Data, err)
		}
		paths = append(paths, d.Trigger+":"+d.Path)
	}
	return paths
}

// TestFeatureFlagsFollowsAnEnvChangeWithoutRestart is the feature-flag use
// case end to end in the engine: the flag's value changes while the actor
// runs, and its next tick takes the other path, with no restart.
func TestFeatureFlagsFollowsAnEnvChangeWithoutRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the examples with the Go toolchain")
	}
	e, sink := newTestEngine(t)
	c, err := e.Compile(context.Background(), testutil.BuildExample(t, "feature-flags"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Ticks() {
		t.Fatal("feature-flags does not export tick")
	}
	env := &mutableEnv{m: runtimehandler.MapEnv{"FEATURE_NEW_UI": {Value: "false"}}}
	dir := t.TempDir()
	a := start(t, e, ActorConfig{Name: "feature-flags", Component: c, Env: env, Dir: dir, TickInterval: limits.MinTickInterval})
	waitFor(t, "2 ticks", func() bool { return a.Ticks() >= 2 })
	if got := featurePaths(t, a); !slices.Equal(got, []string{"init:old-ui"}) {
		t.Fatalf("feature_path events = %v before the change, want init:old-ui only", got)
	}

	env.set("FEATURE_NEW_UI", "true") // the ConfigMap edit
	waitFor(t, "the new-ui path", func() bool { return len(featurePaths(t, a)) == 2 })
	n := a.Ticks()
	waitFor(t, "2 more ticks", func() bool { return a.Ticks() >= n+2 })
	if got := featurePaths(t, a); !slices.Equal(got, []string{"init:old-ui", "tick:new-ui"}) {
		t.Fatalf("feature_path events = %v, want the flip reported once", got)
	}
	if !sink.contains("feature new_ui is on (tick): served the request with the new-ui path") {
		t.Error("no log line of the flip")
	}
	select {
	case <-a.Done():
		t.Fatal("the run ended")
	default:
	}
	untouchedByBudget(t, a) // ticking at the shortest interval
	if a.Phase() != PhaseRunning || string(a.State()) != "new-ui" {
		t.Fatalf("phase %s, state %q; want the same run, state new-ui", a.Phase(), a.State())
	}
	if s, ok, err := readState(dir, limits.DefaultMaxStateBytes); err != nil || !ok || string(s.state) != "new-ui" {
		t.Errorf("saved state = %q, %v, %v; want new-ui", s.state, ok, err)
	}
	// The chain shows the change of decision as an ActorTick that changed
	// the state.
	var changed int
	for _, d := range tickEvents(t, events(t, a)) {
		if d.StateChanged {
			changed++
			if d.Sha256 != digestHex([]byte("new-ui")) {
				t.Errorf("ActorTick %+v, want the digest of new-ui", d)
			}
		}
	}
	if changed != 1 {
		t.Errorf("%d ActorTick events changed the state, want 1", changed)
	}

	env.set("FEATURE_NEW_UI", "off")
	waitFor(t, "the old-ui path again", func() bool { return len(featurePaths(t, a)) == 3 })
	if got := featurePaths(t, a); got[2] != "tick:old-ui" {
		t.Fatalf("feature_path events = %v", got)
	}
}

// TestGoExamplesAnswerRequests: structured-logging and feature-flags
// handle real requests through the engine: one logged, timed request each
// with an answer, and feature-flags answering differently once its flag
// changes, without a restart.
func TestGoExamplesAnswerRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the examples with the Go toolchain")
	}
	e, _ := newTestEngine(t)
	ask := func(t *testing.T, target, msg string) map[string]any {
		t.Helper()
		resp, err := e.Request(context.Background(), Delivery{From: Sender{External: "test"}, Target: target, Msg: []byte(msg)})
		if err != nil {
			t.Fatalf("request %q to %s: %v", msg, target, err)
		}
		var out map[string]any
		if err := json.Unmarshal(resp, &out); err != nil {
			t.Fatalf("response %q: %v", resp, err)
		}
		return out
	}

	t.Run("structured-logging", func(t *testing.T) {
		c, err := e.Compile(context.Background(), testutil.BuildExample(t, "structured-logging"))
		if err != nil {
			t.Fatal(err)
		}
		a := start(t, e, ActorConfig{Name: "structured-logging", Component: c, Dir: t.TempDir()})
		metricsBefore := countMetrics(events(t, a))
		if got := ask(t, "structured-logging", `{"id":"r-9","method":"POST","path":"/orders"}`); got["status"] != float64(201) || got["etag"] == "" {
			t.Errorf("POST /orders answered %v", got)
		}
		if !loggedRequest(t, events(t, a), "r-9", a.ID()) {
			t.Errorf("no structured log line of request r-9 with the actor's id and name")
		}
		if got := ask(t, "structured-logging", "GET /missing"); got["status"] != float64(404) || !strings.Contains(fmt.Sprint(got["error"]), "no route") {
			t.Errorf("GET /missing answered %v", got)
		}
		if n := countMetrics(events(t, a)) - metricsBefore; n != 4 {
			t.Errorf("%d metrics recorded for 2 requests, want request_duration_seconds and requests_handled_total each", n)
		}
	})

	t.Run("feature-flags", func(t *testing.T) {
		c, err := e.Compile(context.Background(), testutil.BuildExample(t, "feature-flags"))
		if err != nil {
			t.Fatal(err)
		}
		env := &mutableEnv{m: runtimehandler.MapEnv{"FEATURE_NEW_UI": {Value: "no"}}}
		start(t, e, ActorConfig{Name: "feature-flags", Component: c, Env: env, TickInterval: -1, Dir: t.TempDir()})
		if got := ask(t, "feature-flags", "GET /"); got["path"] != "old-ui" || got["enabled"] != false {
			t.Errorf("with the flag off: %v", got)
		}
		env.set("FEATURE_NEW_UI", "true")
		if got := ask(t, "feature-flags", "GET /"); got["path"] != "new-ui" || got["enabled"] != true {
			t.Errorf("after the flag changed (no restart, no tick): %v", got)
		}
	})
}

// loggedRequest reports whether the chain has a structured log line of the
// request id from the actor id, named structured-logging, with a time.
func loggedRequest(t *testing.T, evs []chain.Event, requestID, actorID string) bool {
	t.Helper()
	for _, ev := range evs {
		if ev.Kind != chain.KindLog {
			continue
		}
		var log struct{ Message string }
		if json.Unmarshal(ev.Data, &log) != nil {
			continue
		}
		var line struct {
			Timestamp uint64
			Actor     struct{ ID, Name string }
			Context   map[string]any
		}
		if json.Unmarshal([]byte(log.Message), &line) == nil && line.Context["request_id"] == requestID &&
			line.Actor.ID == actorID && line.Actor.Name == "structured-logging" && line.Timestamp > 0 {
			return true
		}
	}
	return false
}

func countMetrics(evs []chain.Event) int {
	return len(slices.DeleteFunc(evs, func(ev chain.Event) bool { return ev.Kind != chain.KindMetric }))
}
