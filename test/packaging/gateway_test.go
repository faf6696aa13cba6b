package packaging_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// gatewayName is the gateway Deployment's name in m, or "".
func gatewayName(m manifest) string {
	for _, o := range m.all("Deployment") {
		if o.GetLabels()["app.kubernetes.io/component"] == "gateway" {
			return o.GetName()
		}
	}
	return ""
}

// TestChartGateway: gateway.enabled installs the gateway (Deployment,
// Service, ServiceAccount), its APIService with a caBundle that verifies
// the serving certificate the gateway mounts, and the RBAC of issue 14:
// the gateway's own rights, every authenticated caller's create on the
// aggregated subresources, and the verbs request and send in the edit
// role. Off, none of it is there.
func TestChartGateway(t *testing.T) {
	off := renderChart(t, "")
	if gatewayName(off) != "" || len(off.all("APIService")) != 0 {
		t.Fatal("the gateway is installed by default; it needs the API server's front-proxy flags")
	}
	editor := typed[rbacv1.ClusterRole](t, off.get("ClusterRole", "troupe-actor-editor"))
	if g := grants(editor.Rules); !g[grant{"theater.troupe.dev", "actors", "request", ""}] || !g[grant{"theater.troupe.dev", "actors", "send", ""}] {
		t.Errorf("the aggregate-to-edit role grants %v, want verbs request and send on actors", editor.Rules)
	}
	viewer := typed[rbacv1.ClusterRole](t, off.get("ClusterRole", "troupe-actor-viewer"))
	if g := grants(viewer.Rules); g[grant{"theater.troupe.dev", "actors", "request", ""}] || g[grant{"theater.troupe.dev", "actors", "send", ""}] {
		t.Errorf("the view role may message actors: %v", viewer.Rules)
	}

	m := renderChart(t, "", "gateway.enabled=true", "host.actorNamespaces={team-a,team-b}")
	checkWiring(t, m, namespace, "team-a", "team-b")
	d := typed[appsv1.Deployment](t, m.get("Deployment", "troupe-gateway"))
	if d == nil {
		t.Fatal("no Deployment troupe-gateway")
	}
	pod := &d.Spec.Template.Spec
	c := container(t, pod, "gateway")
	if c.Command[0] != "/gateway" || pod.ServiceAccountName != "troupe-gateway" {
		t.Errorf("gateway runs %v as %s, want /gateway as troupe-gateway", c.Command, pod.ServiceAccountName)
	}
	if v, _ := flagValue(c.Args, "actor-namespaces"); v != "team-a,team-b" {
		t.Errorf("--actor-namespaces=%q, want the hosts' namespaces team-a,team-b", v)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want HTTPS /readyz", c.ReadinessProbe)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("the gateway runs as root or with a writable root filesystem")
	}
	secrets := map[string]string{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secrets[v.Name] = v.Secret.SecretName
		}
	}
	if secrets["serving"] != "troupe-gateway-tls" || secrets["peer-tls"] != "troupe-gateway-peer-tls" {
		t.Errorf("gateway mounts Secrets %v, want serving troupe-gateway-tls and peer-tls troupe-gateway-peer-tls (the manager's)", secrets)
	}
	svc := typed[corev1.Service](t, m.get("Service", "troupe-gateway"))
	if svc.Spec.Ports[0].Port != 443 {
		t.Errorf("Service port %d, want 443 (the APIService's)", svc.Spec.Ports[0].Port)
	}

	as := m.get("APIService", "v1alpha1.gateway.troupe.dev")
	if as == nil {
		t.Fatal("no APIService v1alpha1.gateway.troupe.dev")
	}
	spec, _, _ := unstructured.NestedMap(as.Object, "spec")
	svcRef, _ := spec["service"].(map[string]any)
	if spec["group"] != "gateway.troupe.dev" || spec["version"] != "v1alpha1" || svcRef["name"] != "troupe-gateway" || svcRef["namespace"] != namespace || spec["insecureSkipTLSVerify"] == true {
		t.Errorf("APIService spec %v", spec)
	}
	// The caBundle verifies the gateway's serving certificate for the
	// name the API server dials.
	secret := typed[corev1.Secret](t, m.getIn("Secret", namespace, "troupe-gateway-tls"))
	bundle, _ := spec["caBundle"].(string)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(decodeB64(t, bundle)) {
		t.Fatal("the APIService's caBundle holds no certificate")
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	if block == nil {
		t.Fatal("troupe-gateway-tls has no tls.crt")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "troupe-gateway." + namespace + ".svc"}); err != nil {
		t.Errorf("the serving certificate does not verify against the caBundle for troupe-gateway.%s.svc: %v", namespace, err)
	}

	// Everyone authenticated may reach the gateway; nothing more.
	caller := typed[rbacv1.ClusterRoleBinding](t, m.get("ClusterRoleBinding", "troupe-gateway-caller"))
	if len(caller.Subjects) != 1 || caller.Subjects[0].Kind != "Group" || caller.Subjects[0].Name != "system:authenticated" {
		t.Errorf("troupe-gateway-caller binds %v, want the group system:authenticated", caller.Subjects)
	}
	want := map[grant]bool{{"gateway.troupe.dev", "actors/request", "create", ""}: true, {"gateway.troupe.dev", "actors/send", "create", ""}: true,
		{"gateway.troupe.dev", "actors/log", "get", ""}: true}
	if diff := diffGrants(want, grants(rules(t, m.get("ClusterRole", caller.RoleRef.Name)))); diff != "" {
		t.Errorf("what every authenticated caller gets: %s", diff)
	}
	reader := m.getIn("RoleBinding", "kube-system", "troupe-gateway-auth-reader")
	if reader == nil || !isAuthReaderBinding(reader) {
		t.Error("the gateway is not bound to extension-apiserver-authentication-reader in kube-system")
	}

	// Prometheus scrapes the gateway's metrics Service, not its API.
	sm := renderChart(t, "", "gateway.enabled=true", "metrics.serviceMonitor.enabled=true")
	exprs, _, _ := unstructured.NestedSlice(sm.one(t, "ServiceMonitor").Object, "spec", "selector", "matchExpressions")
	if len(exprs) != 1 || !strings.Contains(fmt.Sprint(exprs[0]), "gateway") {
		t.Errorf("the ServiceMonitor selects components %v, want the gateway's among them", exprs)
	}
	gm := typed[corev1.Service](t, sm.get("Service", "troupe-gateway-metrics"))
	if gm == nil || gm.Spec.Ports[0].Name != "metrics" || gm.Spec.Ports[0].Port != 8080 {
		t.Errorf("gateway metrics Service %+v, want port metrics 8080", gm)
	}

	// Bring your own certificate: then the caBundle is required.
	if out, err := renderChartErr(t, "", "gateway.enabled=true", "gateway.tls.existingSecret=mine"); err == nil || !strings.Contains(out+err.Error(), "gateway.tls.caBundle is required") {
		t.Errorf("existingSecret without caBundle: %v", err)
	}
	own := renderChart(t, "", "gateway.enabled=true", "gateway.tls.existingSecret=mine", "gateway.tls.caBundle=PEM")
	if own.getIn("Secret", namespace, "troupe-gateway-tls") != nil {
		t.Error("the chart makes a serving certificate although existingSecret gives one")
	}
	ownPod := typed[appsv1.Deployment](t, own.get("Deployment", "troupe-gateway")).Spec.Template.Spec
	for _, v := range ownPod.Volumes {
		if v.Name == "serving" && v.Secret.SecretName != "mine" {
			t.Errorf("serving volume from %s, want mine", v.Secret.SecretName)
		}
	}
}

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %v", err)
	}
	return b
}
