package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// recorder is a Deliverer that answers every request with "pong" and
// records what it was given.
type recorder struct {
	mu  sync.Mutex
	got []actorhost.Delivery
	// more lets Logs write its second line.
	more chan struct{}
}

func (r *recorder) Deliver(_ context.Context, ns, name, op string, d actorhost.Delivery) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	if name == "missing" {
		return nil, fmt.Errorf("actor %s/%s: %w", ns, name, actorhost.ErrNoSuchActor)
	}
	if op == "send" {
		return nil, nil
	}
	return append([]byte("pong:"), d.Msg...), nil
}

func (r *recorder) deliveries() []actorhost.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// nonLoopbackIP is an address of this machine the API server can reach
// and an Endpoints object may name (loopback is refused there).
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.To4()
		}
	}
	t.Skip("no non-loopback IPv4 address: the API server cannot be pointed at an in-process gateway")
	return nil
}

// TestThroughAggregator runs the gateway in-process behind a real
// kube-apiserver's aggregator (front-proxy flags, aggregator routing to a
// selector-less Service's endpoints), and calls actors with
// ServiceAccount tokens: RBAC decides, 403 is never delivered.
func TestThroughAggregator(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest")
	}
	ip := nonLoopbackIP(t)
	dir := t.TempDir()
	proxyCA := newTestCA(t, "front-proxy-ca")
	_, _, proxyCert, proxyKey := proxyCA.issue(t, "front-proxy-client", true, nil, nil)
	proxyCertFile, proxyKeyFile := writePair(t, dir, "front-proxy-client", proxyCert, proxyKey)
	caFile := dir + "/front-proxy-ca.crt"
	writeFile(t, caFile, proxyCA.pem)

	env := envtestutil.StartWith(t, envtestutil.Options{APIServerFlags: map[string]string{
		"requestheader-client-ca-file":       caFile,
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-username-headers":     "X-Remote-User",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"proxy-client-cert-file":             proxyCertFile,
		"proxy-client-key-file":              proxyKeyFile,
		// No kube-proxy here: the aggregator dials the endpoint itself.
		"enable-aggregator-routing": "true",
		// Short, so that the log stream below outlives it: a "log"
		// subresource is a long-running request, which it does not cut.
		"request-timeout": "3s",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	ns := env.Namespace(t)

	// The gateway, serving a certificate for its Service's name.
	svcName := "troupe-gateway"
	servingCA := newTestCA(t, "gateway-ca")
	_, _, servCert, servKey := servingCA.issue(t, svcName, false, []net.IP{ip}, []string{svcName + "." + ns + ".svc"})
	servCertFile, servKeyFile := writePair(t, dir, "serving", servCert, servKey)
	tlsCfg, err := ServingTLS(servCertFile, servKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	authn := NewAuthenticator()
	if err := WatchAuthConfig(ctx, cs, authn, testr.New(t)); err != nil {
		t.Fatal(err)
	}
	if !authn.Ready() {
		t.Fatal("the API server published no front-proxy configuration")
	}
	rec := &recorder{more: make(chan struct{})}
	gw := &Server{Authn: authn, Authz: NewAuthorizer(cs.AuthorizationV1().SubjectAccessReviews()), Deliverer: rec, LogSource: rec, Log: testr.New(t)}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw.Handler(), TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	port := int32(ln.Addr().(*net.TCPAddr).Port)

	// Its Service, endpoints and APIService, as the chart makes them (the
	// chart's Service selects the gateway's pods instead).
	mustCreate(t, ctx, env, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svcName},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}},
	})
	mustCreate(t, ctx, env, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svcName + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	})
	apiSvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": Version + "." + Group},
		"spec": map[string]any{
			"group": Group, "version": Version, "groupPriorityMinimum": int64(1000), "versionPriority": int64(15),
			"service":  map[string]any{"namespace": ns, "name": svcName, "port": int64(443)},
			"caBundle": servingCA.pem,
		},
	}}
	mustCreate(t, ctx, env, apiSvc)
	waitAvailable(t, ctx, env, apiSvc)
	waitServed(t, ctx, env)

	// The chart's RBAC: any authenticated caller reaches the gateway; the
	// gateway's review of verb request/send on the Actor is the real check.
	mustCreate(t, ctx, env, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-gateway-caller"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{Group}, Resources: []string{"actors/request", "actors/send"}, Verbs: []string{"create"}},
			{APIGroups: []string{Group}, Resources: []string{"actors/log"}, Verbs: []string{"get"}}},
	})
	mustCreate(t, ctx, env, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-gateway-caller"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ns + "-gateway-caller"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "system:authenticated"}},
	})
	// The caller's Role: request on one actor.
	mustCreate(t, ctx, env, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "message-counter"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{ActorGroup}, Resources: []string{"actors"}, ResourceNames: []string{"counter"}, Verbs: []string{"request", "send"}}},
	})
	mustCreate(t, ctx, env, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "message-counter"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "message-counter"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "allowed"}},
	})
	allowed := tokenClient(t, ctx, env, cs, ns, "allowed")
	denied := tokenClient(t, ctx, env, cs, ns, "denied")
	base := apiHost(env) + pathPrefix + "/namespaces/" + ns + "/actors/"

	type call struct {
		client     *http.Client
		path       string
		wantStatus int
		wantReason string
	}
	for name, c := range map[string]call{
		"without the verb":      {client: denied, path: "counter/request", wantStatus: http.StatusForbidden, wantReason: "Forbidden"},
		"send without the verb": {client: denied, path: "counter/send", wantStatus: http.StatusForbidden, wantReason: "Forbidden"},
		"another actor":         {client: allowed, path: "other/request", wantStatus: http.StatusForbidden, wantReason: "Forbidden"},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := post(t, ctx, c.client, base+c.path, "ping")
			var eb msgwire.ErrorBody
			if status != c.wantStatus || json.Unmarshal(body, &eb) != nil || eb.Reason != c.wantReason {
				t.Fatalf("got %d %s, want %d with reason %s", status, body, c.wantStatus, c.wantReason)
			}
			t.Logf("refused: %s", eb.Error)
		})
	}
	if got := rec.deliveries(); len(got) != 0 {
		t.Fatalf("refused calls were delivered: %+v", got)
	}

	status, body := post(t, ctx, allowed, base+"counter/request", "ping")
	if status != http.StatusOK || string(body) != "pong:ping" {
		t.Fatalf("allowed request: %d %s, want 200 pong:ping", status, body)
	}
	if status, body := post(t, ctx, allowed, base+"counter/send", "hi"); status != http.StatusAccepted {
		t.Fatalf("allowed send: %d %s, want 202", status, body)
	}
	got := rec.deliveries()
	if len(got) != 2 {
		t.Fatalf("delivered %d messages, want 2", len(got))
	}
	wantFrom := actorhost.Sender{External: "serviceaccount:" + ns + ":allowed"}
	for _, d := range got {
		if d.From != wantFrom || d.Target != ns+"/counter" {
			t.Fatalf("delivered %+v, want from %+v to %s/counter", d, wantFrom, ns)
		}
	}

	// Straight to the gateway, around the API server: no front-proxy
	// certificate, so forged identity headers are not believed.
	direct := &http.Client{Transport: &http.Transport{TLSClientConfig: testTLSClient(servingCA)}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+ln.Addr().String()+pathPrefix+"/namespaces/"+ns+"/actors/counter/request", bytes.NewReader([]byte("x")))
	req.Header.Set("X-Remote-User", "system:admin")
	req.Header.Set("X-Remote-Group", "system:masters")
	resp, err := direct.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(rec.deliveries()) != 2 {
		t.Fatalf("forged headers: %d %s, want 401 and nothing delivered", resp.StatusCode, b)
	}

	testLogsThroughAggregator(t, ctx, env, cs, rec, ns, base, denied)

	// A delivery error crosses the aggregator as the protocol's body.
	mustCreate(t, ctx, env, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "message-all"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{ActorGroup}, Resources: []string{"actors"}, Verbs: []string{"request"}}},
	})
	mustCreate(t, ctx, env, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "message-all"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "message-all"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "all"}},
	})
	all := tokenClient(t, ctx, env, cs, ns, "all")
	status, body = post(t, ctx, all, base+"missing/request", "x")
	var eb msgwire.ErrorBody
	if status != http.StatusNotFound || json.Unmarshal(body, &eb) != nil || eb.Reason != "NoSuchActor" {
		t.Fatalf("missing actor: %d %s, want 404 NoSuchActor", status, body)
	}

	// The figure: a request's round trip through the API server and the
	// gateway (decision cached), against the gateway alone.
	const n = 200
	through := make([]time.Duration, 0, n)
	for range n {
		begin := time.Now()
		if status, body := post(t, ctx, allowed, base+"counter/request", "ping"); status != http.StatusOK {
			t.Fatalf("request %d: %s", status, body)
		}
		through = append(through, time.Since(begin))
	}
	p50, p90 := percentiles(through)

	// Baseline in the same run: the same request straight to the gateway
	// with the front proxy's certificate (no API server hop).
	proxyPair, err := tls.X509KeyPair(proxyCert, proxyKey)
	if err != nil {
		t.Fatal(err)
	}
	asProxy := testTLSClient(servingCA)
	asProxy.Certificates = []tls.Certificate{proxyPair}
	proxied := &http.Client{Transport: &http.Transport{TLSClientConfig: asProxy, ForceAttemptHTTP2: true}}
	directURL := "https://" + ln.Addr().String() + pathPrefix + "/namespaces/" + ns + "/actors/counter/request"
	direct2 := make([]time.Duration, 0, n)
	for range n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, directURL, strings.NewReader("ping"))
		req.Header.Set("X-Remote-User", "system:serviceaccount:"+ns+":allowed")
		req.Header.Set("X-Remote-Group", "system:authenticated")
		begin := time.Now()
		resp, err := proxied.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("direct: %d", resp.StatusCode)
		}
		direct2 = append(direct2, time.Since(begin))
	}
	d50, d90 := percentiles(direct2)

	// What the decision cache saves: a SubjectAccessReview's round trip.
	uncached := NewAuthorizer(cs.AuthorizationV1().SubjectAccessReviews())
	uncached.AllowTTL, uncached.DenyTTL = 0, 0
	u := User{Name: "system:serviceaccount:" + ns + ":allowed", Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	reviews := make([]time.Duration, 0, n)
	for range n {
		begin := time.Now()
		if d, err := uncached.Authorize(ctx, u, "request", ns, "counter"); err != nil || !d.Allowed {
			t.Fatalf("review: %v %v", d, err)
		}
		reviews = append(reviews, time.Since(begin))
	}
	r50, r90 := percentiles(reviews)
	t.Logf("%d requests each: through the API server's aggregator p50 %s p90 %s; straight to the gateway (baseline) p50 %s p90 %s; an uncached SubjectAccessReview p50 %s p90 %s",
		n, p50.Round(time.Microsecond), p90.Round(time.Microsecond), d50.Round(time.Microsecond), d90.Round(time.Microsecond), r50.Round(time.Microsecond), r90.Round(time.Microsecond))
}

func percentiles(d []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)*9/10]
}

func post(t *testing.T, ctx context.Context, c *http.Client, url, msg string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(msg)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// tokenClient creates ServiceAccount ns/name and returns a client that
// presents a token of it (TokenRequest), as a Pod's would.
func tokenClient(t *testing.T, ctx context.Context, env *envtestutil.Env, cs kubernetes.Interface, ns, name string) *http.Client {
	t.Helper()
	mustCreate(t, ctx, env, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of %s/%s: %v", ns, name, err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tr.Status.Token
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustCreate(t *testing.T, ctx context.Context, env *envtestutil.Env, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

// waitAvailable polls until the APIService's Available condition is True.
func waitAvailable(t *testing.T, ctx context.Context, env *envtestutil.Env, apiSvc *unstructured.Unstructured) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		u := apiSvc.DeepCopy()
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(apiSvc), u); err == nil {
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Available" {
					last = fmt.Sprintf("%v: %v", m["reason"], m["message"])
					if m["status"] == "True" {
						return
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("the APIService did not become available: %s", last)
}

// waitServed polls until the API server proxies the group's discovery
// document: Available comes a moment before the proxy's route.
func waitServed(t *testing.T, ctx context.Context, env *envtestutil.Env) {
	t.Helper()
	c, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apiHost(env)+pathPrefix, nil)
		resp, err := c.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte("actors/request")) {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiregistration.k8s.io/v1")
	u.SetKind("APIService")
	_ = env.Client.Get(ctx, client.ObjectKey{Name: Version + "." + Group}, u)
	st, _, _ := unstructured.NestedFieldNoCopy(u.Object, "status")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apiHost(env)+"/apis", nil)
	var groups string
	if resp, err := c.Do(req); err == nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		_ = resp.Body.Close()
		groups = string(b)
	}
	t.Fatalf("the API server does not serve %s: %s (APIService status %v; /apis: %.3000s)", pathPrefix, last, st, groups)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// apiHost is the API server's URL without the trailing slash envtest
// gives it (a path of "//apis" is not found).
func apiHost(env *envtestutil.Env) string { return strings.TrimSuffix(env.Config.Host, "/") }
