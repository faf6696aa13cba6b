package host

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/gateway"
	"github.com/troupe-dev/troupe/internal/msgroute"
	"github.com/troupe-dev/troupe/internal/msgwire"
	"github.com/troupe-dev/troupe/internal/peerca"
)

// TestGatewayToHost puts the gateway's handler (requestheader
// authentication, a real SubjectAccessReview, the router and the peer
// client with the gateway's certificate) in front of a real host: a
// caller the RBAC grants request reaches the actor, whose chain records
// it as user:<name>; one without the verb gets 403 and the actor sees
// nothing. (internal/gateway's TestThroughAggregator covers the API
// server's side with a fake host.)
func TestGatewayToHost(t *testing.T) {
	s := newSuite(t)
	ca := newPeerCA(t)
	g := NewWithT(t)
	h := s.startHost(t, withPeer(t, ca, ""))
	wasm, err := os.ReadFile(filepath.Join("..", "actorhost", "testdata", "messenger.wasm"))
	g.Expect(err).NotTo(HaveOccurred())
	h.run("y", v1alpha1.ActorSpec{Component: *s.urlSource(wasm)}, time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The gateway's routing, as cmd/gateway builds it.
	files := mustFiles(t, peerIdentity(t, ca, msgwire.GatewayCN))
	client := msgwire.NewClient(files.ClientTLSConfig(msgwire.HostCN), msgwire.ClientOptions{})
	t.Cleanup(client.Close)
	c, err := msgroute.NewCache(s.env.Config, s.env.Scheme, nil, h.ns)
	g.Expect(err).NotTo(HaveOccurred())
	r, err := msgroute.New(ctx, c, msgroute.Options{Client: client, LeaseNamespace: h.ns, Log: testr.New(t)})
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = c.Start(ctx) }()
	g.Expect(c.WaitForCacheSync(ctx)).To(BeTrue())

	// A front proxy of the test's own CA (the aggregator's side is
	// TestThroughAggregator's).
	proxyCA := newPeerCA(t)
	proxyLeaf, err := peerca.IssueLeaf(proxyCA, "front-proxy-client", time.Now(), time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	proxy := proxyLeaf.Cert
	cfg, err := gateway.ConfigFromConfigMap(&corev1.ConfigMap{Data: map[string]string{
		"requestheader-client-ca-file":   string(proxyCA.CertPEM),
		"requestheader-allowed-names":    `["front-proxy-client"]`,
		"requestheader-username-headers": `["X-Remote-User"]`,
		"requestheader-group-headers":    `["X-Remote-Group"]`,
	}})
	g.Expect(err).NotTo(HaveOccurred())
	authn := gateway.NewAuthenticator()
	authn.Set(cfg)
	cs := kubernetes.NewForConfigOrDie(s.env.Config)
	srv := &gateway.Server{Authn: authn, Authz: gateway.NewAuthorizer(cs.AuthorizationV1().SubjectAccessReviews()),
		Deliverer: gateway.Routed{Router: r}, Log: testr.New(t)}

	g.Expect(h.c.Create(h.ctx(), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "request-y"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"actors"}, ResourceNames: []string{"y"}, Verbs: []string{"request"}}},
	})).To(Succeed())
	g.Expect(h.c.Create(h.ctx(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "alice-request-y"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "request-y"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "alice"}},
	})).To(Succeed())

	call := func(user, msg string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/apis/gateway.troupe.dev/v1alpha1/namespaces/"+h.ns+"/actors/y/request", strings.NewReader(msg))
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{proxy}}
		req.Header.Set("X-Remote-User", user)
		req.Header.Set("X-Remote-Group", "system:authenticated")
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		return w
	}
	w := call("mallory", "emallory-was-here")
	g.Expect(w.Code).To(Equal(http.StatusForbidden), w.Body.String())
	var eb msgwire.ErrorBody
	g.Expect(json.Unmarshal(w.Body.Bytes(), &eb)).To(Succeed())
	g.Expect(eb.Reason).To(Equal("Forbidden"))

	w = call("alice", "ehello")
	g.Expect(w.Code).To(Equal(http.StatusOK), w.Body.String())
	g.Expect(w.Body.String()).To(Equal("ehello"))

	// The figure: the gateway's handler (decision cached) to the actor on
	// its host over the peer transport, against the host's own engine
	// (in-process) in the same run.
	const n = 200
	through, local := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	for range n {
		begin := time.Now()
		if w := call("alice", "eping"); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body.String())
		}
		through = append(through, time.Since(begin))
		begin = time.Now()
		if _, err := h.host.engine.Request(h.ctx(), actorhost.Delivery{From: actorhost.Sender{External: "test"}, Target: h.ns + "/y", Msg: []byte("eping")}); err != nil {
			t.Fatal(err)
		}
		local = append(local, time.Since(begin))
	}
	slices.Sort(through)
	slices.Sort(local)
	t.Logf("%d requests: gateway handler → peer transport → actor p50 %s p90 %s; in-process (baseline) p50 %s p90 %s",
		n, through[n/2].Round(time.Microsecond), through[n*9/10].Round(time.Microsecond), local[n/2].Round(time.Microsecond), local[n*9/10].Round(time.Microsecond))

	// The chain has alice's request, recorded as user:alice, and nothing
	// of mallory's.
	g.Eventually(func() []string {
		events, err := h.chain("y")
		if err != nil {
			return []string{err.Error()}
		}
		var received []string
		for _, e := range events {
			if e.Kind == chain.KindRequestReceived && !strings.Contains(string(e.Data), `"external":"test"`) {
				received = append(received, string(e.Data))
			}
		}
		return received
	}).WithTimeout(10 * time.Second).Should(And(HaveLen(1+n), HaveEach(ContainSubstring(`"from":{"external":"user:alice"}`))))
}
