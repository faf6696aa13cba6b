//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// gatewayValues install the gateway (the local cluster's API server has
// the front-proxy flags and aggregator routing).
var gatewayValues = []string{"--set", "gateway.enabled=true"}

// gateway: the structured-logging sample answers a request through the
// aggregated API with the kubeconfig's own credentials, and a
// ServiceAccount without verb request on actors is refused with 403.
func (s *suite) gateway(t *testing.T) {
	poll(t, 2*time.Minute, time.Second, "APIService v1alpha1.gateway.troupe.dev Available", func(ctx context.Context) (bool, string, error) {
		out, err := s.kubectlCmd(ctx, "get", "apiservice", "v1alpha1.gateway.troupe.dev",
			"-o", `jsonpath={.status.conditions[?(@.type=="Available")].status} {.status.conditions[?(@.type=="Available")].message}`)
		if err != nil {
			return false, err.Error(), nil
		}
		return strings.HasPrefix(out, "True"), out, nil
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	path := "/apis/gateway.troupe.dev/v1alpha1/namespaces/" + sampleNS + "/actors/structured-logging/request"

	admin, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	status, body := gatewayPost(t, admin, cfg.Host, path, "GET /orders")
	if status != http.StatusOK || !strings.Contains(body, "status") {
		t.Fatalf("the kubeconfig's request: %d %s, want 200 and structured-logging's answer", status, body)
	}
	t.Logf("structured-logging answered through the gateway: %s", body)

	// The CLI in cluster mode, run as the kubectl plugin: the same call
	// with the kubeconfig's credentials, the answer on stdout.
	plugin := filepath.Join(s.tmp, "bin", "kubectl-troupe")
	s.runOK(t, "go", "build", "-o", plugin, "./cmd/troupe")
	out := s.runOK(t, plugin, "request", "-n", sampleNS, "structured-logging", "GET /orders")
	if !strings.Contains(out, "status") {
		t.Fatalf("kubectl troupe request -n %s structured-logging: %q, want structured-logging's answer", sampleNS, out)
	}
	t.Logf("kubectl troupe request answered: %s", strings.TrimSpace(out))

	// A ServiceAccount with no Role: authenticated, not authorized.
	ctx := t.Context()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sampleNS, Name: "e2e-no-verb"}}
	if err := s.kube.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ignoreNotFound(s.kube.Delete(context.Background(), sa)) })
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))}}
	if err := s.kube.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("a token of %s/%s: %v", sampleNS, sa.Name, err)
	}
	anon := rest.AnonymousClientConfig(cfg)
	anon.BearerToken = tr.Status.Token
	asSA, err := rest.HTTPClientFor(anon)
	if err != nil {
		t.Fatal(err)
	}
	status, body = gatewayPost(t, asSA, cfg.Host, path, "GET /forbidden")
	var eb struct{ Error, Reason string }
	if status != http.StatusForbidden || json.Unmarshal([]byte(body), &eb) != nil || eb.Reason != "Forbidden" {
		t.Fatalf("a ServiceAccount without the verb: %d %s, want 403 Forbidden", status, body)
	}
	t.Logf("refused: %s", eb.Error)
}

func gatewayPost(t *testing.T, c *http.Client, host, path, msg string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, strings.TrimSuffix(host, "/")+path, strings.NewReader(msg))
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
		t.Fatal(fmt.Errorf("reading the gateway's answer: %w", err))
	}
	return resp.StatusCode, string(b)
}
