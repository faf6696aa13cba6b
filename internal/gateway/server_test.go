package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// fakeSAR answers SubjectAccessReviews from allow (user/verb/ns/name) and
// counts them.
type fakeSAR struct {
	allow map[string]bool
	fail  atomic.Bool
	calls atomic.Int64
}

func (f *fakeSAR) authorizer() *Authorizer {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.calls.Add(1)
		if f.fail.Load() {
			return true, nil, errors.New("connection refused")
		}
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		ra := sar.Spec.ResourceAttributes
		if ra.Group != ActorGroup || ra.Resource != ActorResource {
			return true, nil, errors.New("unexpected resource " + ra.Group + "/" + ra.Resource)
		}
		sar.Status.Allowed = f.allow[sar.Spec.User+"/"+ra.Verb+"/"+ra.Namespace+"/"+ra.Name]
		return true, sar, nil
	})
	return NewAuthorizer(cs.AuthorizationV1().SubjectAccessReviews())
}

type testGateway struct {
	srv   *Server
	rec   *recorder
	sar   *fakeSAR
	proxy *x509.Certificate
	other *x509.Certificate
}

func newTestGateway(t testing.TB) *testGateway {
	t.Helper()
	ca := newTestCA(t, "front-proxy-ca")
	_, proxy, _, _ := ca.issue(t, "front-proxy-client", true, nil, nil)
	_, other, _, _ := newTestCA(t, "other").issue(t, "front-proxy-client", true, nil, nil)
	cfg, err := ConfigFromConfigMap(authConfigMap(ca.pem))
	if err != nil {
		t.Fatal(err)
	}
	authn := NewAuthenticator()
	authn.Set(cfg)
	sar := &fakeSAR{allow: map[string]bool{
		"alice/request/team-a/counter":                            true,
		"alice/send/team-a/counter":                               true,
		"system:serviceaccount:team-a:bot/request/team-a/counter": true,
	}}
	rec := &recorder{}
	return &testGateway{
		srv: &Server{Authn: authn, Authz: sar.authorizer(), Deliverer: rec, Log: logr.Discard()},
		rec: rec, sar: sar, proxy: proxy, other: other,
	}
}

// request builds a call as the front proxy makes it: its certificate, the
// caller in the headers.
func (g *testGateway) request(method, path, user string, body io.Reader, cert *x509.Certificate) *http.Request {
	r := httptest.NewRequest(method, path, body)
	if cert != nil {
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	}
	if user != "" {
		r.Header.Set("X-Remote-User", user)
		r.Header.Add("X-Remote-Group", "system:authenticated")
	}
	return r
}

func TestHandler(t *testing.T) {
	const actorPath = pathPrefix + "/namespaces/team-a/actors/counter/"
	tests := map[string]struct {
		method, path, user string
		body               string
		noCert, otherCA    bool
		sarDown            bool
		wantStatus         int
		wantReason         string
		wantBody           string
		wantDelivered      bool
	}{
		"request":               {path: actorPath + "request", user: "alice", body: "ping", wantStatus: 200, wantBody: "pong:ping", wantDelivered: true},
		"send":                  {path: actorPath + "send", user: "alice", body: "hi", wantStatus: 202, wantDelivered: true},
		"service account":       {path: actorPath + "request", user: "system:serviceaccount:team-a:bot", body: "x", wantStatus: 200, wantDelivered: true},
		"no verb":               {path: actorPath + "send", user: "system:serviceaccount:team-a:bot", body: "x", wantStatus: 403, wantReason: "Forbidden"},
		"other namespace":       {path: pathPrefix + "/namespaces/team-b/actors/counter/request", user: "alice", wantStatus: 403, wantReason: "Forbidden"},
		"no client cert":        {path: actorPath + "request", user: "alice", noCert: true, wantStatus: 401, wantReason: "Unauthenticated"},
		"forged headers":        {path: actorPath + "request", user: "alice", otherCA: true, wantStatus: 401, wantReason: "Unauthenticated"},
		"no user":               {path: actorPath + "request", wantStatus: 401, wantReason: "Unauthenticated"},
		"reviews unavailable":   {path: actorPath + "request", user: "alice", sarDown: true, wantStatus: 503, wantReason: "AuthorizationUnavailable"},
		"bad namespace":         {path: pathPrefix + "/namespaces/Team_A/actors/counter/request", user: "alice", wantStatus: 400, wantReason: "BadRequest"},
		"bad timeout":           {path: actorPath + "request?timeout=soon", user: "alice", wantStatus: 400, wantReason: "BadRequest"},
		"unknown op":            {path: actorPath + "poke", user: "alice", wantStatus: 404, wantReason: "NotFound"},
		"too large":             {path: actorPath + "request", user: "alice", body: strings.Repeat("x", limits.MaxMessageBytesLimit+1), wantStatus: 413, wantReason: "MessageTooLarge"},
		"too large, forbidden":  {path: actorPath + "send", user: "bob", body: strings.Repeat("x", limits.MaxMessageBytesLimit+1), wantStatus: 403, wantReason: "Forbidden"},
		"delivery error":        {path: pathPrefix + "/namespaces/team-a/actors/missing/request", user: "carol", wantStatus: 404, wantReason: "NoSuchActor", wantDelivered: true},
		"discovery":             {method: http.MethodGet, path: pathPrefix, user: "system:kube-aggregator", wantStatus: 200, wantBody: `"actors/request"`},
		"discovery, no cert":    {method: http.MethodGet, path: pathPrefix, user: "alice", noCert: true, wantStatus: 401, wantReason: "Unauthenticated"},
		"healthz without cert":  {method: http.MethodGet, path: "/healthz", noCert: true, wantStatus: 200, wantBody: "ok"},
		"readyz without cert":   {method: http.MethodGet, path: "/readyz", noCert: true, wantStatus: 200, wantBody: "ok"},
		"GET on a message path": {method: http.MethodGet, path: actorPath + "request", user: "alice", wantStatus: 404, wantReason: "NotFound"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := newTestGateway(t)
			g.sar.allow["carol/request/team-a/missing"] = true
			g.sar.fail.Store(tc.sarDown)
			cert := g.proxy
			switch {
			case tc.noCert:
				cert = nil
			case tc.otherCA:
				cert = g.other
			}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			w := httptest.NewRecorder()
			g.srv.Handler().ServeHTTP(w, g.request(method, tc.path, tc.user, strings.NewReader(tc.body), cert))
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body.String(), tc.wantStatus)
			}
			if tc.wantReason != "" {
				var eb msgwire.ErrorBody
				if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Reason != tc.wantReason || eb.Error == "" {
					t.Fatalf("body %s, want a JSON error with reason %s", w.Body.String(), tc.wantReason)
				}
			}
			if tc.wantBody != "" && !strings.Contains(w.Body.String(), tc.wantBody) {
				t.Fatalf("body %q, want %q in it", w.Body.String(), tc.wantBody)
			}
			if got := len(g.rec.deliveries()); (got > 0) != tc.wantDelivered {
				t.Fatalf("%d deliveries, want delivered %v", got, tc.wantDelivered)
			}
		})
	}
}

func TestHandlerRecordsTheCaller(t *testing.T) {
	g := newTestGateway(t)
	r := g.request(http.MethodPost, pathPrefix+"/namespaces/team-a/actors/counter/request", "system:serviceaccount:team-a:bot", strings.NewReader("m"), g.proxy)
	r.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	r.Header.Set("Authorization", "Bearer secret-token")
	g.srv.Handler().ServeHTTP(httptest.NewRecorder(), r)
	d := g.rec.deliveries()
	if len(d) != 1 {
		t.Fatalf("%d deliveries, want 1", len(d))
	}
	if d[0].From.External != "serviceaccount:team-a:bot" || d[0].Target != "team-a/counter" || string(d[0].Msg) != "m" ||
		d[0].TraceParent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Fatalf("delivered %+v", d[0])
	}
	if b, _ := json.Marshal(d[0]); bytes.Contains(b, []byte("secret-token")) {
		t.Fatalf("the delivery carries the caller's token: %s", b)
	}
}

func TestReadyzBeforeConfig(t *testing.T) {
	s := &Server{Authn: NewAuthenticator(), Log: logr.Discard()}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d before the front-proxy configuration, want 503", w.Code)
	}
}

func TestAuthorizerCache(t *testing.T) {
	sar := &fakeSAR{allow: map[string]bool{"alice/request/ns/a": true}}
	a := sar.authorizer()
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	alice := User{Name: "alice", Groups: []string{"g1", "g2"}}
	ctx := t.Context()
	check := func(u User, verb, name string, want bool, wantCalls int64) {
		t.Helper()
		d, err := a.Authorize(ctx, u, verb, "ns", name)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != want || sar.calls.Load() != wantCalls {
			t.Fatalf("%s %s %s: allowed %v after %d reviews, want %v after %d", u.Name, verb, name, d.Allowed, sar.calls.Load(), want, wantCalls)
		}
	}
	check(alice, "request", "a", true, 1)
	check(alice, "request", "a", true, 1) // cached
	check(User{Name: "alice", Groups: []string{"g2", "g1"}}, "request", "a", true, 1)
	check(alice, "send", "a", false, 2)
	check(alice, "send", "a", false, 2) // a denial is cached too
	check(alice, "request", "b", false, 3)
	check(User{Name: "alice", Extra: map[string][]string{"k": {"v"}}}, "request", "a", true, 4) // another identity: reviewed
	now = now.Add(DefaultDecisionTTL)
	check(alice, "request", "a", true, 5) // expired: asked again

	// No cache: every message is reviewed.
	a = sar.authorizer()
	a.AllowTTL, a.DenyTTL = 0, 0
	check(alice, "request", "a", true, 6)
	check(alice, "request", "a", true, 7)

	sar.fail.Store(true)
	if _, err := a.Authorize(ctx, alice, "request", "ns", "a"); err == nil {
		t.Fatal("a failed review gave no error")
	}
}

// TestHandlerConcurrent: callers at once, the decision cache overflowing
// and starting over, every answer right (run with -race).
func TestHandlerConcurrent(t *testing.T) {
	g := newTestGateway(t)
	g.srv.Authz.MaxEntries = 4
	h := g.srv.Handler()
	var wrong, allowed atomic.Int64
	done := make(chan struct{})
	const workers, each = 8, 50
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				user := "alice"
				want := http.StatusOK
				if (w+i)%3 == 0 {
					user, want = "bob", http.StatusForbidden
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, g.request(http.MethodPost, pathPrefix+"/namespaces/team-a/actors/counter/request", user, strings.NewReader("m"), g.proxy))
				if rec.Code != want {
					wrong.Add(1)
				}
				if want == http.StatusOK {
					allowed.Add(1)
				}
			}
		}()
	}
	for range workers {
		<-done
	}
	if wrong.Load() != 0 {
		t.Fatalf("%d wrong answers", wrong.Load())
	}
	if n := len(g.rec.deliveries()); int64(n) != allowed.Load() {
		t.Fatalf("%d deliveries, want alice's %d and none of bob's", n, allowed.Load())
	}
}
