package actorhost

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
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
		})
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
	a := start(t, e, ActorConfig{Name: "hello", Component: c})
	for want := 2; want <= 3; want++ {
		if err := a.Restart(context.Background(), "again"); err != nil {
			t.Fatal(err)
		}
		var s struct{ Count int }
		if err := json.Unmarshal(a.State(), &s); err != nil || s.Count != want {
			t.Fatalf("state %q, want count %d", a.State(), want)
		}
	}
}
