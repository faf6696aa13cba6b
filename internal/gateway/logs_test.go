package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// fakeLogs is a LogSource that answers body (or err) and records the
// queries.
type fakeLogs struct {
	body string
	err  error
	mu   sync.Mutex
	got  []msgwire.LogQuery
}

func (f *fakeLogs) Logs(_ context.Context, _, _ string, q msgwire.LogQuery) (io.ReadCloser, error) {
	f.mu.Lock()
	f.got = append(f.got, q)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return io.NopCloser(strings.NewReader(f.body)), nil
}

func (f *fakeLogs) queries() []msgwire.LogQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]msgwire.LogQuery(nil), f.got...)
}

func TestLogsHandler(t *testing.T) {
	const logPath = pathPrefix + "/namespaces/team-a/actors/counter/log"
	line := func(seq int, msg string) string {
		b, _ := json.Marshal(msgwire.LogRecord{Seq: uint64(seq), Level: "info", Message: msg})
		return string(b) + "\n"
	}
	two := line(1, "one") + line(2, "two")
	tests := map[string]struct {
		path, user string
		noCert     bool
		body       string
		srcErr     error
		wantStatus int
		wantReason string
		wantBody   string
		wantOpened bool
	}{
		"with the verb":           {path: logPath + "?tail=5&level=warn", user: "alice", body: two, wantStatus: 200, wantBody: two, wantOpened: true},
		"without the verb":        {path: logPath, user: "bob", body: two, wantStatus: 403, wantReason: "Forbidden"},
		"request is not logs":     {path: logPath, user: "system:serviceaccount:team-a:bot", body: two, wantStatus: 403, wantReason: "Forbidden"},
		"another actor":           {path: pathPrefix + "/namespaces/team-a/actors/other/log", user: "alice", wantStatus: 403, wantReason: "Forbidden"},
		"no client cert":          {path: logPath, user: "alice", noCert: true, wantStatus: 401, wantReason: "Unauthenticated"},
		"bad query":               {path: logPath + "?tail=-1", user: "alice", wantStatus: 400, wantReason: "BadRequest"},
		"unknown parameter":       {path: logPath + "?tial=5", user: "alice", wantStatus: 400, wantReason: "BadRequest"},
		"bad name":                {path: pathPrefix + "/namespaces/team-a/actors/Bad_Name/log", user: "alice", wantStatus: 400, wantReason: "BadRequest"},
		"not running":             {path: logPath, user: "alice", srcErr: fmt.Errorf("%w: suspended", actorhost.ErrActorNotRunning), wantStatus: 409, wantReason: "ActorNotRunning", wantOpened: true},
		"moving":                  {path: logPath, user: "alice", srcErr: fmt.Errorf("x: %w", msgwire.ErrMoving), wantStatus: 503, wantReason: "Moving", wantOpened: true},
		"a cut last line dropped": {path: logPath, user: "alice", body: line(1, "one") + `{"seq":2,"mess`, wantStatus: 200, wantBody: line(1, "one"), wantOpened: true},
		"a line too long ends it": {path: logPath, user: "alice", body: line(1, "one") + strings.Repeat("x", msgwire.MaxLogLineBytes+10) + "\n" + line(3, "three"), wantStatus: 200, wantBody: line(1, "one"), wantOpened: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := newTestGateway(t)
			g.sar.allow["alice/logs/team-a/counter"] = true
			g.sar.allow["bob/request/team-a/counter"] = true
			src := &fakeLogs{body: tc.body, err: tc.srcErr}
			g.srv.LogSource = src
			cert := g.proxy
			if tc.noCert {
				cert = nil
			}
			w := httptest.NewRecorder()
			g.srv.Handler().ServeHTTP(w, g.request(http.MethodGet, tc.path, tc.user, nil, cert))
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body.String(), tc.wantStatus)
			}
			if tc.wantReason != "" {
				var eb msgwire.ErrorBody
				if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Reason != tc.wantReason || eb.Error == "" {
					t.Fatalf("body %s, want a JSON error with reason %s", w.Body.String(), tc.wantReason)
				}
			}
			if tc.wantStatus == 200 && w.Body.String() != tc.wantBody {
				t.Fatalf("body %q, want %q", w.Body.String(), tc.wantBody)
			}
			if got := src.queries(); (len(got) > 0) != tc.wantOpened {
				t.Fatalf("opened %d streams, want opened %v", len(got), tc.wantOpened)
			}
			if name == "with the verb" {
				if q := src.queries()[0]; q.Tail != 5 || q.Level != "warn" || q.Follow {
					t.Fatalf("query %+v", q)
				}
			}
		})
	}
}

func TestDiscoveryListsLog(t *testing.T) {
	g := newTestGateway(t)
	w := httptest.NewRecorder()
	g.srv.Handler().ServeHTTP(w, g.request(http.MethodGet, pathPrefix, "alice", nil, g.proxy))
	if !strings.Contains(w.Body.String(), `{"name":"actors/log","singularName":"","namespaced":true,"kind":"ActorLog","verbs":["get"]}`) {
		t.Fatalf("discovery %s", w.Body.String())
	}
}

// Logs writes a first line at once and a second one when r.more is
// closed, then ends: a follower through the API server must see the first
// before the second exists.
func (r *recorder) Logs(ctx context.Context, _, _ string, _ msgwire.LogQuery) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, `{"seq":1,"level":"info","message":"first"}`+"\n")
		select {
		case <-r.more:
		case <-ctx.Done():
		}
		_, _ = io.WriteString(pw, `{"seq":2,"level":"info","message":"second"}`+"\n")
		_ = pw.Close()
	}()
	return pr, nil
}

// testLogsThroughAggregator: GET actors/log through the API server needs
// the chart's get on actors/log (any authenticated caller) and the
// caller's own logs verb on the Actor; the stream is flushed line by line
// through the aggregator and outlives the API server's request timeout.
func testLogsThroughAggregator(t *testing.T, ctx context.Context, env *envtestutil.Env, cs kubernetes.Interface, rec *recorder, ns, base string, denied *http.Client) {
	mustCreate(t, ctx, env, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "logs-counter"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{ActorGroup}, Resources: []string{"actors"}, ResourceNames: []string{"counter"}, Verbs: []string{LogVerb}}},
	})
	mustCreate(t, ctx, env, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "logs-counter"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "logs-counter"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "reader"}},
	})
	reader := tokenClient(t, ctx, env, cs, ns, "reader")
	get := func(c *http.Client) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"counter/log?follow=1&tail=10", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get(denied)
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	var eb msgwire.ErrorBody
	if resp.StatusCode != http.StatusForbidden || json.Unmarshal(b, &eb) != nil || eb.Reason != "Forbidden" {
		t.Fatalf("logs without the verb: %d %s, want 403 Forbidden", resp.StatusCode, b)
	}
	resp = get(reader)
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		t.Fatalf("logs with the verb: %d %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.Contains(first, `"first"`) {
		t.Fatalf("first line %q: %v", first, err)
	}
	// The property under test is time itself: the stream is still open
	// past the API server's request timeout (3 s).
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(4 * time.Second):
	}
	close(rec.more)
	second, err := br.ReadString('\n')
	if err != nil || !strings.Contains(second, `"second"`) {
		t.Fatalf("second line %q: %v", second, err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the last line: %q %v", rest, err)
	}
}
