package actorhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// TestGuestErrorsAreScrubbed runs an actor that quotes the secret it read
// in its init or tick err and on stdout: the ActorError (what status and
// Events show), the chain file and the host's log carry "[redacted]".
func TestGuestErrorsAreScrubbed(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	env := runtimehandler.MapEnv{"API_TOKEN": {Value: token + "\n", Secret: true}} // as a Secret made from a file
	tests := map[string]struct {
		state  string
		reason Reason
		op     string
	}{
		"init err": {state: "I", reason: ReasonInitFailed, op: "init"},
		"tick err": {state: "T", reason: ReasonTickFailed, op: "tick"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, sink := newTestEngine(t)
			dir := t.TempDir()
			a, err := e.Start(context.Background(), ActorConfig{Name: "quoter", Component: compile(t, e, "secret_err"),
				Env: env, Dir: dir, InitialState: []byte(tc.state), TickInterval: limits.MinTickInterval})
			if a == nil {
				t.Fatalf("Start: %v", err)
			}
			t.Cleanup(func() { _ = a.Stop(context.Background(), "test over") })
			select {
			case <-a.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("the actor did not fail")
			}
			var ae *ActorError
			if !errors.As(a.Err(), &ae) {
				t.Fatalf("Err() = %v, want an *ActorError", a.Err())
			}
			if ae.Reason != tc.reason || ae.Op != tc.op || ae.Message != "cannot connect with [redacted]" ||
				ae.Err.Error() != ae.Message {
				t.Fatalf("got %s %s %q (%v)", ae.Reason, ae.Op, ae.Message, ae.Err)
			}
			if err := a.Stop(context.Background(), "test over"); err != nil {
				t.Fatal(err)
			}
			checkNoSecret(t, token, dir, sink)
			var scrubbed int
			for _, ev := range fileEvents(t, dir) {
				if bytes.Contains(ev.Data, []byte(token)) {
					t.Errorf("%s event holds the token: %s", ev.Op, ev.Data)
				}
				scrubbed += bytes.Count(ev.Data, []byte("cannot connect with [redacted]"))
			}
			// stdout's line, the failed InitResult or ActorTick, and ActorStop.
			if scrubbed != 3 {
				t.Errorf("%d events quote the scrubbed line, want 3", scrubbed)
			}
			if !sink.contains("cannot connect with [redacted]") {
				t.Error("the stdout line is not in the log")
			}
		})
	}
}

// checkNoSecret fails the test when the chain file in dir or a line the
// sinks logged holds secret.
func checkNoSecret(t *testing.T, secret, dir string, sinks ...*logSink) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, chain.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Error("the chain file holds the secret")
	}
	for _, sink := range sinks {
		sink.mu.Lock()
		for _, l := range sink.lines {
			if strings.Contains(l, secret) {
				t.Errorf("log line holds the secret: %s", l)
			}
		}
		sink.mu.Unlock()
	}
}

// TestSecretKeptInTheStateStaysScrubbedInTheNextRun is the host's restart
// path and `troupe run`'s second process: a run reads a secret and saves
// it in its state; the next run, a new Actor (here in a new engine) on the
// same directory, hands the state to the host before it reads any env. The
// env source knows the secret (a Secret-backed variable), so the value is
// scrubbed from the log, the custom event, stdout and the chain all the
// same.
func TestSecretKeptInTheStateStaysScrubbedInTheNextRun(t *testing.T) {
	const token = "tok-7a6b5c4d3e2f"
	env := runtimehandler.MapEnv{"API_TOKEN": {Value: token, Secret: true}}
	dir := t.TempDir()
	var sinks []*logSink
	for run := range 2 {
		e, sink := newTestEngine(t)
		sinks = append(sinks, sink)
		a := start(t, e, ActorConfig{Name: "keeper", Component: compile(t, e, "secret_state"), Env: env, Dir: dir})
		if a.Phase() != PhaseRunning || string(a.State()) != token {
			t.Fatalf("run %d: phase %s, state %q; want Running with the token kept", run, a.Phase(), a.State())
		}
		if err := a.Stop(context.Background(), "run over"); err != nil {
			t.Fatal(err)
		}
	}
	checkNoSecret(t, token, dir, sinks...)
	var kept, logged int
	for _, ev := range fileEvents(t, dir) {
		switch ev.Kind {
		case chain.KindCustom:
			var d struct{ Data []byte }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			if string(d.Data) != runtimehandler.Redacted {
				t.Errorf("the kept event's data is %q, want %q", d.Data, runtimehandler.Redacted)
			}
			kept++
		case chain.KindLog:
			var d struct{ Message string }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.Message != runtimehandler.Redacted {
				t.Errorf("%s event message %q, want %q", ev.Op, d.Message, runtimehandler.Redacted)
			}
			logged++
		}
	}
	if kept != 1 || logged != 2 { // the second run's log call and its stdout line
		t.Errorf("%d kept events and %d log events, want 1 and 2", kept, logged)
	}
}
