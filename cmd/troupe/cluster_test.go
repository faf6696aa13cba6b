package main

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// fakeAPIServer is an httptest TLS server standing in for the API server
// (and the gateway behind it): it records what it was asked and answers
// with answer.
type fakeAPIServer struct {
	*httptest.Server
	mu       sync.Mutex
	calls    []fakeCall
	answer   func(w http.ResponseWriter)
	kubeconf string
}

type fakeCall struct {
	method, path, auth, contentType string
	body                            string
}

const testToken = "tok-3f9a"

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{answer: func(w http.ResponseWriter) { _, _ = io.WriteString(w, "pong") }}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		f.mu.Lock()
		f.calls = append(f.calls, fakeCall{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		answer := f.answer
		f.mu.Unlock()
		answer(w)
	}))
	t.Cleanup(f.Close)
	f.kubeconf = writeKubeconfig(t, f.URL, f.Certificate().Raw)
	return f
}

// writeKubeconfig writes a kubeconfig with two contexts on server: "main"
// (the current one, namespace team-a) and "other" (namespace team-b),
// both with a bearer token.
func writeKubeconfig(t *testing.T, server string, caDER []byte) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: pemCert(caDER)}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: testToken}
	cfg.Contexts["main"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u", Namespace: "team-a"}
	cfg.Contexts["other"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u", Namespace: "team-b"}
	cfg.CurrentContext = "main"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func (f *fakeAPIServer) takeCalls() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeAPIServer) setAnswer(a func(w http.ResponseWriter)) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

// isolate keeps the test off the user's own kubeconfig and socket.
func isolate(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
}

// TestClusterModeDelivers: with a cluster flag, request and send post to
// the gateway's path through the API server with the kubeconfig's
// credentials, in -n's namespace or else the context's, and print what
// local mode prints.
func TestClusterModeDelivers(t *testing.T) {
	isolate(t)
	f := newFakeAPIServer(t)
	tests := []struct {
		name     string
		args     []string
		wantPath string
		stdout   string
	}{
		{"request, the context's namespace", []string{"request", "--kubeconfig", f.kubeconf, "counter", "get"},
			"/apis/gateway.troupe.dev/v1alpha1/namespaces/team-a/actors/counter/request", "pong"},
		{"request -n", []string{"request", "--kubeconfig", f.kubeconf, "-n", "shop", "counter", "get"},
			"/apis/gateway.troupe.dev/v1alpha1/namespaces/shop/actors/counter/request", "pong"},
		{"request --context", []string{"request", "--kubeconfig", f.kubeconf, "--context", "other", "counter", "get"},
			"/apis/gateway.troupe.dev/v1alpha1/namespaces/team-b/actors/counter/request", "pong"},
		{"request --json", []string{"request", "--kubeconfig", f.kubeconf, "--json", "counter", "get"},
			"/apis/gateway.troupe.dev/v1alpha1/namespaces/team-a/actors/counter/request", `"pong"` + "\n"},
		{"send", []string{"send", "--kubeconfig", f.kubeconf, "--namespace=shop", "orders", "get"},
			"/apis/gateway.troupe.dev/v1alpha1/namespaces/shop/actors/orders/send", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, tc.args...)
			if code != 0 || stdout != tc.stdout {
				t.Fatalf("exit %d, stdout %q (want %q), stderr %q", code, stdout, tc.stdout, stderr)
			}
			calls := f.takeCalls()
			if len(calls) != 1 {
				t.Fatalf("%d calls, want 1", len(calls))
			}
			c := calls[0]
			if c.method != http.MethodPost || c.path != tc.wantPath || c.auth != "Bearer "+testToken || c.body != "get" || c.contentType != "application/octet-stream" {
				t.Errorf("the API server got %+v, want POST %s with the token", c, tc.wantPath)
			}
		})
	}
	// KUBECONFIG alone, with -n: the user's default kubeconfig.
	t.Setenv("KUBECONFIG", f.kubeconf)
	if _, stderr, code := runCLI(t, "send", "-n", "x", "a", "b"); code != 0 {
		t.Fatalf("with $KUBECONFIG: exit %d: %s", code, stderr)
	}
	if c := f.takeCalls(); len(c) != 1 || !strings.Contains(c[0].path, "/namespaces/x/actors/a/send") {
		t.Errorf("with $KUBECONFIG: %+v", c)
	}
}

// TestClusterModeExitCodes: every error answer maps to local mode's exit
// status and message, and what only a cluster answers (401, 403, no
// gateway, no API server) to its own.
func TestClusterModeExitCodes(t *testing.T) {
	isolate(t)
	f := newFakeAPIServer(t)
	gateway := func(status int, reason, msg string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) { writeError(w, status, reason, msg) }
	}
	apiServer := func(status int, reason, msg string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
				"message": msg, "reason": reason, "code": status})
		}
	}
	type tcase struct {
		answer func(w http.ResponseWriter)
		code   int
		stderr string
	}
	tests := map[string]tcase{
		"handler failed": {gateway(422, "HandlerFailed", "actor x failed handling the request (Trap): boom"), exitFailed, "troupe: actor x failed handling the request (Trap): boom\n"},
		"internal":       {gateway(500, "Internal", "something broke"), exitFailed, "troupe: something broke\n"},
		"unauthenticated, gateway": {gateway(401, "Unauthenticated", "no trusted front-proxy identity"), exitUnauthenticated,
			"not authenticated: the cluster did not accept your kubeconfig's credentials"},
		"unauthenticated, API server": {apiServer(401, "Unauthorized", "Unauthorized"), exitUnauthenticated, "not authenticated"},
		"forbidden, gateway": {gateway(403, "Forbidden", `user "bob" cannot request actors "counter" in namespace "team-a"`), exitForbidden,
			`forbidden: you need the verb "request" on actors.theater.troupe.dev in that namespace`},
		"forbidden, API server": {apiServer(403, "Forbidden", `actors.gateway.troupe.dev "counter" is forbidden`), exitForbidden, "forbidden"},
		"no gateway":            {apiServer(404, "NotFound", "the server could not find the requested resource"), exitNoServer, "the cluster serves no troupe gateway"},
		"gateway unavailable":   {apiServer(503, "ServiceUnavailable", "service unavailable"), exitNoServer, "the cluster serves no troupe gateway"},
		"not JSON":              {func(w http.ResponseWriter) { w.WriteHeader(502); _, _ = io.WriteString(w, "<html>bad gateway</html>") }, exitFailed, "the server answered 502: <html>bad gateway</html>"},
	}
	// Every reason of the protocol's table: exit 1 with the message, as
	// the socket client gives it (NamespaceNotAllowed's 403 included).
	for _, m := range deliveryStatuses {
		tests["reason "+m.reason] = tcase{gateway(m.status, m.reason, "the engine says "+m.reason), exitFailed, "troupe: the engine says " + m.reason + "\n"}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f.setAnswer(tc.answer)
			_, stderr, code := runCLI(t, "request", "--kubeconfig", f.kubeconf, "counter", "get")
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", code, stderr, tc.code, tc.stderr)
			}
			if strings.Contains(stderr, testToken) {
				t.Fatal("the token is on stderr")
			}
		})
	}
	t.Run("no API server", func(t *testing.T) {
		dead := httptest.NewTLSServer(http.NotFoundHandler())
		kc := writeKubeconfig(t, dead.URL, dead.Certificate().Raw)
		dead.Close()
		if _, stderr, code := runCLI(t, "send", "--kubeconfig", kc, "a", "b"); code != exitNoServer || !strings.Contains(stderr, "reaching the API server") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
}

// TestLocalModeByDefault: without a cluster flag, send and request use the
// local socket even with a kubeconfig at hand; --socket with a cluster
// flag, bad names and a missing kubeconfig are usage errors.
func TestLocalModeByDefault(t *testing.T) {
	isolate(t)
	f := newFakeAPIServer(t)
	t.Setenv("KUBECONFIG", f.kubeconf)
	for _, args := range [][]string{{"request", "counter", "get"}, {"send", "counter", "get"}, {"request", "--socket", filepath.Join(t.TempDir(), "s.sock"), "counter", "get"}} {
		if _, stderr, code := runCLI(t, args...); code != exitNoServer || !strings.Contains(stderr, "no troupe run is listening") {
			t.Errorf("%q: exit %d, %s", args, code, stderr)
		}
	}
	if c := f.takeCalls(); len(c) != 0 {
		t.Fatalf("local mode reached the API server: %+v", c)
	}
	for name, args := range map[string][]string{
		"socket and cluster": {"request", "--socket", "/tmp/x.sock", "-n", "a", "counter", "get"},
		"bad name":           {"request", "-n", "a", "Counter_1", "get"},
		"bad namespace":      {"request", "-n", "A_b", "counter", "get"},
		"no kubeconfig":      {"request", "--kubeconfig", filepath.Join(t.TempDir(), "missing"), "counter", "get"},
		"unknown context":    {"request", "--context", "nope", "counter", "get"},
	} {
		if _, stderr, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%s: exit %d, want %d: %s", name, code, exitUsage, stderr)
		}
	}
	if c := f.takeCalls(); len(c) != 0 {
		t.Fatalf("a usage error reached the API server: %+v", c)
	}
}

// TestPluginMode: run as kubectl-troupe, send and request go to the
// cluster without a flag, and the help says `kubectl troupe`.
func TestPluginMode(t *testing.T) {
	isolate(t)
	f := newFakeAPIServer(t)
	t.Setenv("KUBECONFIG", f.kubeconf)
	pluginMode = true
	t.Cleanup(func() { pluginMode = false })
	stdout, stderr, code := runCLI(t, "request", "counter", "get")
	if code != 0 || stdout != "pong" {
		t.Fatalf("exit %d, %q, %s", code, stdout, stderr)
	}
	if c := f.takeCalls(); len(c) != 1 || c[0].path != "/apis/gateway.troupe.dev/v1alpha1/namespaces/team-a/actors/counter/request" {
		t.Fatalf("calls %+v", c)
	}
	if out, _, _ := runCLI(t, "request", "--help"); !strings.Contains(out, "kubectl troupe request") {
		t.Errorf("the plugin's help does not say kubectl troupe:\n%s", out)
	}
	for arg0, want := range map[string]bool{"/usr/local/bin/kubectl-troupe": true, "kubectl-troupe.exe": true, "troupe": false, "/x/kubectl-troupe-x": false} {
		old := os.Args[0]
		os.Args[0] = arg0
		if got := asPlugin(); got != want {
			t.Errorf("asPlugin(%q) = %v", arg0, got)
		}
		os.Args[0] = old
	}
}
