package actorhost

import (
	"bytes"
	"context"
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
			raw, err := os.ReadFile(filepath.Join(dir, chain.FileName))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(raw, []byte(token)) {
				t.Error("the chain file holds the token")
			}
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
			sink.mu.Lock()
			defer sink.mu.Unlock()
			for _, l := range sink.lines {
				if strings.Contains(l, token) {
					t.Errorf("log line holds the token: %s", l)
				}
			}
		})
	}
}
