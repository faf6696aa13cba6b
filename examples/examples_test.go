// Package examples_test checks the example actors: their modules against the
// guest ABI, their Actor YAMLs against the API, and their behaviour under a
// fake runtime handler (the engine's own tests run them end to end).
package examples_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/testutil"
)

func exampleNames(t *testing.T) []string {
	t.Helper()
	mains, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "examples", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mains {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	if len(names) < 4 {
		t.Fatalf("found examples %v, want at least hello, monitoring, structured-logging, feature-flags", names)
	}
	return names
}

func fake(name string) *testutil.FakeRuntime {
	return &testutil.FakeRuntime{
		ID:      "0b6f6a52-3f0e-4c5e-9d3b-2f8f1d1c9e77",
		Name:    name,
		Version: "test",
		SystemInfo: testutil.SystemInfo{
			Hostname: "node-a", OSType: "linux", OSRelease: "6.8.0",
			CPUCount: 4, MemoryTotal: 16 << 30, MemoryAvailable: 4 << 30, Uptime: 3600,
		},
	}
}

// tickingExamples are the examples that register a tick function.
var tickingExamples = map[string]bool{"feature-flags": true}

func TestExamplesFollowTheGuestABI(t *testing.T) {
	for _, name := range exampleNames(t) {
		t.Run(name, func(t *testing.T) {
			m := testutil.Compile(t, testutil.BuildExample(t, name))
			if err := testutil.CheckGuestABI(m); err != nil {
				t.Fatalf("%s departs from the guest ABI:\n%v", name, err)
			}
			// A Go reactor exports all four; the host relies on _initialize
			// running the Go runtime's initialization first.
			for _, exp := range []string{abi.Init.Name, abi.Realloc.Name, abi.InitPost.Name, abi.Initialize.Name} {
				if _, ok := m.ExportedFunctions()[exp]; !ok {
					t.Errorf("does not export %s", exp)
				}
			}
			// Only the actors that use OnTick export tick: the others are
			// never called after init.
			wantTick := tickingExamples[name]
			for _, exp := range []string{abi.Tick.Name, abi.TickPost.Name} {
				if _, ok := m.ExportedFunctions()[exp]; ok != wantTick {
					t.Errorf("exports %s: %v, want %v", exp, ok, wantTick)
				}
			}
			if len(testutil.RuntimeImportNames(m)) == 0 {
				t.Error("imports nothing from the runtime")
			}
		})
	}
}

func TestExampleActorYAMLs(t *testing.T) {
	for _, name := range exampleNames(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(testutil.RepoRoot(t), "examples", name)
			data, err := os.ReadFile(filepath.Join(dir, "actor.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			a, err := v1alpha1.ParseActor(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Validate(v1alpha1.ValidationOptions{AllowPath: true}); err != nil {
				t.Fatalf("actor.yaml is not a valid Actor: %v", err)
			}
			if a.Name != name {
				t.Errorf("metadata.name = %q, want the directory's name %q", a.Name, name)
			}
			// `make examples` writes bin/examples/<name>.wasm; the path is
			// relative to the YAML file.
			want := filepath.Join(testutil.RepoRoot(t), "bin", "examples", name+".wasm")
			if got := filepath.Join(dir, a.Spec.Component.Path); got != want {
				t.Errorf("component.path resolves to %s, want %s", got, want)
			}
		})
	}
}

func initOnce(t *testing.T, name string, fr *testutil.FakeRuntime, state []byte, hasState bool) ([]byte, bool, error) {
	t.Helper()
	g := testutil.StartGuest(t, testutil.BuildExample(t, name), fr)
	return g.Init(context.Background(), state, hasState, fr.ID)
}

func TestHello(t *testing.T) {
	t.Run("greets, records an event and counts across restarts", func(t *testing.T) {
		state, has := []byte(`{"count":0}`), true
		for run := 1; run <= 3; run++ {
			// A fresh instance each run, as after a restart: only the state carries over.
			fr := fake("hello")
			fr.SetEnv("GREETING", "Hi")
			out, hasOut, err := initOnce(t, "hello", fr, state, has)
			if err != nil {
				t.Fatal(err)
			}
			var s struct{ Count int }
			if err := json.Unmarshal(out, &s); !hasOut || err != nil || s.Count != run {
				t.Fatalf("run %d: state %q (has=%v), want count %d", run, out, hasOut, run)
			}
			wantLog := testutil.LogLine{Level: "info", Message: "Hi from hello (" + fr.ID + "), run #" + strconv.Itoa(run)}
			if logs := fr.Logs(); !slices.Contains(logs, wantLog) {
				t.Errorf("run %d: logs %+v lack %+v", run, logs, wantLog)
			}
			events := fr.Events()
			if len(events) != 1 || events[0].Type != "greeted" {
				t.Fatalf("run %d: events %+v, want one greeted", run, events)
			}
			var ev map[string]any
			if err := json.Unmarshal(events[0].Data, &ev); err != nil {
				t.Fatal(err)
			}
			if want := map[string]any{"greeting": "Hi", "name": "hello", "count": float64(run)}; !reflect.DeepEqual(ev, want) {
				t.Errorf("run %d: greeted = %v, want %v", run, ev, want)
			}
			state, has = out, hasOut
		}
	})
	t.Run("no state and no GREETING", func(t *testing.T) {
		fr := fake("hello")
		out, _, err := initOnce(t, "hello", fr, nil, false)
		if err != nil || string(out) != `{"count":1}` {
			t.Fatalf("init = (%q, %v), want {\"count\":1}", out, err)
		}
		if logs := fr.Logs(); len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "Hello from hello") {
			t.Errorf("logs = %+v, want the default greeting", logs)
		}
	})
	t.Run("a corrupt state is an init error", func(t *testing.T) {
		_, _, err := initOnce(t, "hello", fake("hello"), []byte("nope"), true)
		var ie *testutil.InitError
		if !errors.As(err, &ie) || !strings.Contains(ie.Message, `is not {"count": N}`) {
			t.Fatalf("err = %v, want an init error about the state", err)
		}
	})
}

func TestMonitoring(t *testing.T) {
	tests := map[string]struct {
		total, available uint64
		warnEnv          string // MEMORY_WARN_PERCENT; "" unset
		wantLevel        string
		wantLog          string
		wantMetrics      map[string]float64 // metrics that must have these values
		wantNoMemory     bool
	}{
		"75% used is info": {
			total: 16 << 30, available: 4 << 30, wantLevel: "info", wantLog: "Memory 75.0%",
			wantMetrics: map[string]float64{"memory_used_bytes": 12 << 30, "memory_usage_percent": 75, "memory_available_bytes": 4 << 30, "cpus": 4, "uptime_seconds": 3600},
		},
		"93.75% used passes the default 90% and warns": {
			total: 16 << 30, available: 1 << 30, wantLevel: "warn", wantLog: "Memory 93.8%",
			wantMetrics: map[string]float64{"memory_usage_percent": 93.75},
		},
		"MEMORY_WARN_PERCENT lowers the threshold": {
			total: 16 << 30, available: 4 << 30, warnEnv: "70", wantLevel: "warn", wantLog: "warn at 70%",
		},
		"a bad MEMORY_WARN_PERCENT falls back to 90": {
			total: 16 << 30, available: 4 << 30, warnEnv: "lots", wantLevel: "info", wantLog: "warn at 90%",
		},
		"no memory total: no percentage": {
			total: 0, available: 0, wantLevel: "warn", wantLog: "skipping memory metrics", wantNoMemory: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fr := fake("monitoring")
			fr.SystemInfo.MemoryTotal, fr.SystemInfo.MemoryAvailable = tc.total, tc.available
			if tc.warnEnv != "" {
				fr.SetEnv("MEMORY_WARN_PERCENT", tc.warnEnv)
			}
			if _, _, err := initOnce(t, "monitoring", fr, nil, false); err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, m := range fr.Metrics() {
				got[m.Name] = m.Value
			}
			for k, v := range tc.wantMetrics {
				if got[k] != v {
					t.Errorf("metric %s = %v, want %v (all: %v)", k, got[k], v, got)
				}
			}
			if _, ok := got["memory_used_bytes"]; ok == tc.wantNoMemory {
				t.Errorf("memory metrics recorded = %v, want %v", ok, !tc.wantNoMemory)
			}
			if _, ok := got["actor_heap_bytes"]; !ok && !tc.wantNoMemory {
				t.Error("no actor_heap_bytes metric")
			}
			logs := fr.Logs()
			last := logs[len(logs)-1]
			if last.Level != tc.wantLevel || !strings.Contains(last.Message, tc.wantLog) {
				t.Errorf("last log = %+v, want level %s containing %q", last, tc.wantLevel, tc.wantLog)
			}
		})
	}
}

func TestStructuredLogging(t *testing.T) {
	fr := fake("structured-logging")
	var clock atomic.Int64
	clock.Store(1_700_000_000_000)
	fr.Now = func() time.Time { return time.UnixMilli(clock.Add(3)) } // every reading 3 ms later
	if _, _, err := initOnce(t, "structured-logging", fr, nil, false); err != nil {
		t.Fatal(err)
	}

	type entry struct {
		Message   string
		Timestamp uint64
		Actor     struct{ ID, Name string }
		Context   map[string]any
	}
	var got []string
	durations := map[string]float64{}
	for _, l := range fr.Logs() {
		var e entry
		if err := json.Unmarshal([]byte(l.Message), &e); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l.Message, err)
		}
		if e.Actor.ID != fr.ID || e.Actor.Name != "structured-logging" || e.Timestamp < 1_700_000_000_000 {
			t.Errorf("log line %q lacks the actor or the host's timestamp", l.Message)
		}
		id, _ := e.Context["request_id"].(string)
		got = append(got, l.Level+" "+e.Message+" "+id)
		if d, ok := e.Context["duration_ms"].(float64); ok {
			durations[id] = d
		}
		if e.Message == "Request failed" && !strings.Contains(e.Context["error"].(string), "404") {
			t.Errorf("failed request's context %v lacks the error", e.Context)
		}
	}
	want := []string{
		"info Request received req-1", "info Request completed req-1",
		"info Request received req-2", "info Request completed req-2",
		"info Request received req-3", "error Request failed req-3",
	}
	if !slices.Equal(got, want) {
		t.Errorf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	metrics := fr.Metrics()
	if len(metrics) != 6 {
		t.Fatalf("metrics = %+v, want request_duration_seconds and requests_handled_total for each of 3 requests", metrics)
	}
	for i := 0; i < 3; i++ {
		id := "req-" + strconv.Itoa(i+1)
		d, n := metrics[2*i], metrics[2*i+1]
		// The clock moves 3 ms per reading, and start and end are consecutive readings.
		if d.Name != "request_duration_seconds" || d.Value != 0.003 || durations[id] != 3 {
			t.Errorf("metric %d = %+v, logged duration %v ms, want request_duration_seconds 0.003 and 3 ms", 2*i, d, durations[id])
		}
		if n.Name != "requests_handled_total" || n.Value != 1 {
			t.Errorf("metric %d = %+v, want requests_handled_total 1", 2*i+1, n)
		}
	}
}

func TestFeatureFlags(t *testing.T) {
	tests := map[string]struct {
		value string // "" leaves FEATURE_NEW_UI unset
		newUI bool
	}{
		"unset":   {"", false},
		"true":    {"true", true},
		"TRUE":    {"TRUE", true},
		"yes":     {"yes", true},
		"Yes":     {"Yes", true},
		"1":       {"1", true},
		"false":   {"false", false},
		"0":       {"0", false},
		"no":      {"no", false},
		"enabled": {"enabled", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fr := fake("feature-flags")
			if tc.value != "" {
				fr.SetEnv("FEATURE_NEW_UI", tc.value)
			}
			state, has, err := initOnce(t, "feature-flags", fr, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			checkPaths(t, fr, decision{tc.newUI, "init"})
			if want := pathOf(tc.newUI); !has || string(state) != want {
				t.Errorf("state = %q (has=%v), want %q", state, has, want)
			}
		})
	}
}

// TestFeatureFlagsSeesAChangeWithoutRestart edits the flag between ticks
// of one instance: the actor reports each change of path once, at the next
// tick, and stays quiet while the flag stays put.
func TestFeatureFlagsSeesAChangeWithoutRestart(t *testing.T) {
	fr := fake("feature-flags")
	fr.SetEnv("FEATURE_NEW_UI", "false")
	g := testutil.StartGuest(t, testutil.BuildExample(t, "feature-flags"), fr)
	state, has, err := g.Init(context.Background(), nil, false, fr.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_750_000_000_000)
	tick := func() {
		t.Helper()
		now = now.Add(time.Second)
		if state, has, err = g.Tick(context.Background(), state, has, now); err != nil {
			t.Fatal(err)
		}
	}
	tick()
	tick()
	checkPaths(t, fr, decision{false, "init"})
	fr.SetEnv("FEATURE_NEW_UI", "Yes") // the ConfigMap edit
	tick()
	checkPaths(t, fr, decision{false, "init"}, decision{true, "tick"})
	tick()
	tick()
	checkPaths(t, fr, decision{false, "init"}, decision{true, "tick"})
	if string(state) != "new-ui" {
		t.Errorf("state = %q, want new-ui", state)
	}
	fr.UnsetEnv("FEATURE_NEW_UI") // the key removed
	tick()
	checkPaths(t, fr, decision{false, "init"}, decision{true, "tick"}, decision{false, "tick"})
	// Every tick read the flag again.
	if n := countCalls(fr.Calls(), "get-env"); n != 7 {
		t.Errorf("get-env was called %d times, want once at init and at each of 6 ticks", n)
	}
}

// TestFeatureFlagsTickRepairsAForeignState: a state that is no path (an
// initialState, a state from another version) is replaced at the next tick
// by the decision, reported.
func TestFeatureFlagsTickRepairsAForeignState(t *testing.T) {
	fr := fake("feature-flags")
	fr.SetEnv("FEATURE_NEW_UI", "1")
	g := testutil.StartGuest(t, testutil.BuildExample(t, "feature-flags"), fr)
	state, has, err := g.Tick(context.Background(), []byte("v0 state"), true, time.Now())
	if err != nil || !has || string(state) != "new-ui" {
		t.Fatalf("tick = (%q, %v, %v), want new-ui", state, has, err)
	}
	checkPaths(t, fr, decision{true, "tick"})
}

func countCalls(calls []string, fn string) int {
	n := 0
	for _, c := range calls {
		if c == fn {
			n++
		}
	}
	return n
}

type decision struct {
	newUI   bool
	trigger string // init or tick
}

func pathOf(newUI bool) string {
	if newUI {
		return "new-ui"
	}
	return "old-ui"
}

// checkPaths asserts the feature_path events and log lines, in order, are
// these decisions.
func checkPaths(t *testing.T, fr *testutil.FakeRuntime, want ...decision) {
	t.Helper()
	events := fr.Events()
	if len(events) != len(want) {
		t.Fatalf("events = %+v, want %d feature_path", events, len(want))
	}
	for i, d := range want {
		var ev map[string]any
		if err := json.Unmarshal(events[i].Data, &ev); err != nil || events[i].Type != "feature_path" {
			t.Fatalf("event %d = %s %q, want feature_path JSON", i, events[i].Type, events[i].Data)
		}
		if w := map[string]any{"feature": "new_ui", "enabled": d.newUI, "path": pathOf(d.newUI), "trigger": d.trigger}; !reflect.DeepEqual(ev, w) {
			t.Errorf("event %d = %v, want %v", i, ev, w)
		}
	}
	logs := fr.Logs()
	if len(logs) != len(want) {
		t.Fatalf("logs = %+v, want %d", logs, len(want))
	}
	for i, d := range want {
		if !strings.Contains(logs[i].Message, "("+d.trigger+"): served the request with the "+pathOf(d.newUI)+" path") {
			t.Errorf("log %d = %q, want the %s path at %s", i, logs[i].Message, pathOf(d.newUI), d.trigger)
		}
	}
}
