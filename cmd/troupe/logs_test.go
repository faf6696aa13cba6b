package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// logLine is the JSON line of a record "a<seq>" at seq.
func logLine(seq uint64) string {
	b, _ := json.Marshal(msgwire.LogRecord{Seq: seq, Level: "warn", Message: fmt.Sprintf("a%d", seq),
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ActorID: "id", Epoch: 1})
	return string(b) + "\n"
}

// scriptedGateway answers the i-th GET of a log stream with script[i]
// (the last one for any later GET), recording the queries.
type scriptedGateway struct {
	*httptest.Server
	mu       sync.Mutex
	queries  []url.Values
	kubeconf string
}

func newScriptedGateway(t *testing.T, script ...func(w http.ResponseWriter, r *http.Request)) *scriptedGateway {
	t.Helper()
	g := &scriptedGateway{}
	g.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		n := len(g.queries)
		g.queries = append(g.queries, r.URL.Query())
		g.mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/apis/gateway.troupe.dev/v1alpha1/namespaces/shop/actors/orders/log" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			return
		}
		script[min(n, len(script)-1)](w, r)
	}))
	t.Cleanup(g.Close)
	g.kubeconf = writeKubeconfig(t, g.URL, g.Certificate().Raw)
	return g
}

func (g *scriptedGateway) taken() []url.Values {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]url.Values(nil), g.queries...)
}

func stream(lines ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, l := range lines {
			_, _ = io.WriteString(w, l)
		}
	}
}

// TestLogsFollowReconnects: -f across a stream cut mid-line, an actor
// between hosts (503 Moving), a host that ends the stream (a restart) and
// a host that sends a record again: each record is printed once, in
// order, and each new stream asks for what follows the last one printed.
func TestLogsFollowReconnects(t *testing.T) {
	isolate(t)
	defer func(b [2]time.Duration) { logsBackoff = b }(logsBackoff)
	logsBackoff = [2]time.Duration{time.Millisecond, 5 * time.Millisecond}
	end, _ := json.Marshal(msgwire.LogRecord{EndOfStream: "the run is stopping on host h-1", Seq: 12})
	g := newScriptedGateway(t,
		// The first stream breaks in the middle of a line.
		func(w http.ResponseWriter, r *http.Request) {
			stream(logLine(1), logLine(3), logLine(5), `{"seq":7,"lev`)(w, r)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		},
		func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusServiceUnavailable, "Moving", "actor moving: no host took it within 5s")
		},
		stream(logLine(5), logLine(7), logLine(9), string(end)+"\n"),
		// The last one stays open until the CLI goes.
		func(w http.ResponseWriter, r *http.Request) {
			stream(logLine(13), logLine(15))(w, r)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stdout, stderr := &envtestutil.LockedBuffer{}, &envtestutil.LockedBuffer{}
	root := newRootCommand()
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs([]string{"logs", "--kubeconfig", g.kubeconf, "shop/orders", "-f", "--tail", "3", "--level", "warn"})
	done := make(chan int, 1)
	go func() { done <- execute(ctx, root, stderr) }()
	want := "2026-01-02T03:04:05.000Z WARN  a1\n2026-01-02T03:04:05.000Z WARN  a3\n2026-01-02T03:04:05.000Z WARN  a5\n" +
		"2026-01-02T03:04:05.000Z WARN  a7\n2026-01-02T03:04:05.000Z WARN  a9\n2026-01-02T03:04:05.000Z WARN  a13\n2026-01-02T03:04:05.000Z WARN  a15\n"
	for stdout.String() != want {
		if !strings.HasPrefix(want, stdout.String()) {
			t.Fatalf("stdout %q, want %q", stdout.String(), want)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stdout %q, want %q; stderr %q", stdout.String(), want, stderr.String())
		case code := <-done:
			t.Fatalf("exited %d: stdout %q, stderr %q", code, stdout.String(), stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("interrupted: exit %d, stderr %q", code, stderr.String())
	}
	q := g.taken()
	if len(q) != 4 {
		t.Fatalf("%d streams, want 4: %v", len(q), q)
	}
	if q[0].Get("tail") != "3" || q[0].Has("after") || q[0].Get("follow") != "1" || q[0].Get("level") != "warn" {
		t.Errorf("first query %v", q[0])
	}
	for i, after := range []string{"5", "5", "12"} {
		if got := q[i+1]; got.Get("after") != after || got.Has("tail") || got.Get("level") != "warn" || got.Get("follow") != "1" {
			t.Errorf("query %d: %v, want after=%s and no tail", i+2, got, after)
		}
	}
	for _, s := range []string{"the stream broke", "actor moving", "the run is stopping on host h-1"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("stderr %q, want %q in it", stderr.String(), s)
		}
	}
}

func TestLogsOnce(t *testing.T) {
	isolate(t)
	hostile, _ := json.Marshal(msgwire.LogRecord{Seq: 9, Level: "error\x1b[2J", Message: "boom\x1b[31m\u202e", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	refused, _ := json.Marshal(msgwire.LogRecord{Seq: 11, Level: "info", Error: "log message is 99999 bytes", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	g := newScriptedGateway(t, stream(logLine(1), string(hostile)+"\n", string(refused)+"\n"))
	stdout, stderr, code := runCLI(t, "logs", "--kubeconfig", g.kubeconf, "-n", "shop", "orders", "--since", "1h")
	want := "2026-01-02T03:04:05.000Z WARN  a1\n2026-01-02T03:04:05.000Z ERROR\\u001b[2J boom\\u001b[31m\\u202e\n2026-01-02T03:04:05.000Z INFO  (refused log call: log message is 99999 bytes)\n"
	if code != 0 || stdout != want {
		t.Fatalf("exit %d, stdout %q (want %q), stderr %q", code, stdout, want, stderr)
	}
	q := g.taken()[0]
	since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
	if err != nil || time.Since(since) < time.Hour || time.Since(since) > time.Hour+time.Minute || q.Has("follow") || q.Has("tail") {
		t.Fatalf("query %v", q)
	}
	stdout, _, code = runCLI(t, "logs", "--kubeconfig", g.kubeconf, "shop/orders", "-o", "json")
	if code != 0 || strings.Count(stdout, "\n") != 3 || strings.Contains(stdout, "\x1b") || !strings.Contains(stdout, `"message":"a1"`) {
		t.Fatalf("-o json: exit %d, %q", code, stdout)
	}
}

func TestLogsExitCodes(t *testing.T) {
	isolate(t)
	answer := func(status int, reason, msg string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) { writeError(w, status, reason, msg) }
	}
	tests := map[string]struct {
		answer func(w http.ResponseWriter, r *http.Request)
		args   []string
		code   int
		stderr string
	}{
		"forbidden":           {answer(403, "Forbidden", "alice may not read the logs"), nil, exitForbidden, `you need the verb "logs"`},
		"no such actor":       {answer(404, "NoSuchActor", `no such actor: "shop/orders"`), nil, exitFailed, "no such actor"},
		"follow, not running": {answer(409, "ActorNotRunning", "actor orders is suspended"), []string{"-f"}, exitFailed, "suspended"},
		"unauthenticated":     {answer(401, "Unauthenticated", "no"), []string{"-f"}, exitUnauthenticated, "not authenticated"},
		"bad level":           {nil, []string{"--level", "loud"}, exitUsage, "--level"},
		"bad tail":            {nil, []string{"--tail", "100001"}, exitUsage, "--tail"},
		"bad output":          {nil, []string{"-o", "yaml"}, exitUsage, "-o"},
		"two namespaces":      {nil, []string{"-n", "other"}, exitUsage, "give one"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := tc.answer
			if a == nil {
				a = stream()
			}
			g := newScriptedGateway(t, a)
			args := append([]string{"logs", "--kubeconfig", g.kubeconf, "shop/orders"}, tc.args...)
			_, stderr, code := runCLI(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", code, stderr, tc.code, tc.stderr)
			}
		})
	}
	// Nobody listens: 3.
	g := newScriptedGateway(t, stream())
	kc := g.kubeconf
	g.Close()
	if _, stderr, code := runCLI(t, "logs", "--kubeconfig", kc, "shop/orders"); code != exitNoServer {
		t.Fatalf("no API server: exit %d, %q", code, stderr)
	}
}

func TestLogsCompletesLevels(t *testing.T) {
	isolate(t)
	stdout, _, code := runCLI(t, "__complete", "logs", "--level", "")
	if code != 0 || !strings.Contains(stdout, "warn\n") || !strings.Contains(stdout, "debug\n") {
		t.Fatalf("exit %d: %q", code, stdout)
	}
}
