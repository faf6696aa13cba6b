package host

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// hostServiceAccount is the host pods' identity in config/rbac/host.
const hostServiceAccount = "troupe-host"

// asServiceAccount runs the host as config/rbac/host's service account,
// with exactly the roles generated from the markers in rbac.go.
func (s *suite) asServiceAccount(t *testing.T) hostOption {
	return func(cfg *Config) {
		s.env.InstallRBAC(t, cfg.PodNamespace, "config/rbac/host", "service_account.yaml", "role.yaml", "role_binding.yaml")
		cfg.RestConfig = s.env.AsServiceAccount(cfg.PodNamespace, hostServiceAccount)
	}
}

// testRBAC: with its generated roles only, a host does all its work (lease,
// actors, env from ConfigMaps and Secrets, status, events, deletion), and
// may do nothing more.
func (s *suite) testRBAC(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t, s.asServiceAccount(t))
	g.Expect(h.c.Create(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "db"},
		StringData: map[string]string{"password": "pw"}})).To(Succeed())
	g.Expect(h.c.Create(h.ctx(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "flags"},
		Data: map[string]string{"A": "1"}})).To(Succeed())
	spec := h.probeSpec(literal("PROBE_VARS", "DB_PASSWORD,F_A"), fromSecret("DB_PASSWORD", "db", "password"))
	spec.EnvFrom = []v1alpha1.EnvFromSource{{Prefix: "F_", ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "flags"}}}
	a := h.create("guarded", spec)
	a.Finalizers = []string{v1alpha1.ChainFlushFinalizer}
	g.Expect(h.c.Update(h.ctx(), a)).To(Succeed())
	h.assign("guarded", h.pod, 1)
	h.waitReason("guarded", v1alpha1.ReasonRunning, 60*time.Second)
	g.Expect(h.custom("guarded", "env")).To(ContainElement(HaveKeyWithValue("sha256", sha256Hex([]byte("1")))))
	g.Eventually(h.events).WithArguments("guarded").Should(ContainElement(ContainSubstring("Started:")))
	g.Expect(h.c.Delete(h.ctx(), h.get("guarded"))).To(Succeed())
	h.waitReason("guarded", v1alpha1.ReasonStopped, 20*time.Second)
	g.Expect(h.logs.String()).NotTo(ContainSubstring("forbidden"))

	user := fmt.Sprintf("system:serviceaccount:%s:%s", h.ns, hostServiceAccount)
	group := v1alpha1.GroupVersion.Group
	denied := map[string]authorizationv1.ResourceAttributes{
		"change an actor's spec":        {Namespace: h.ns, Verb: "update", Group: group, Resource: "actors"},
		"patch an actor":                {Namespace: h.ns, Verb: "patch", Group: group, Resource: "actors"},
		"delete an actor":               {Namespace: h.ns, Verb: "delete", Group: group, Resource: "actors"},
		"create an actor":               {Namespace: h.ns, Verb: "create", Group: group, Resource: "actors"},
		"remove a finalizer":            {Namespace: h.ns, Verb: "update", Group: group, Resource: "actors", Subresource: "finalizers"},
		"write a Secret":                {Namespace: h.ns, Verb: "update", Resource: "secrets"},
		"write a ConfigMap":             {Namespace: h.ns, Verb: "create", Resource: "configmaps"},
		"touch leases elsewhere":        {Namespace: "kube-system", Verb: "update", Group: "coordination.k8s.io", Resource: "leases"},
		"list leases":                   {Namespace: h.ns, Verb: "list", Group: "coordination.k8s.io", Resource: "leases"},
		"read pods":                     {Namespace: h.ns, Verb: "list", Resource: "pods"},
		"read nodes":                    {Verb: "get", Resource: "nodes"},
		"write core events (old API)":   {Namespace: h.ns, Verb: "create", Resource: "events"},
		"delete events":                 {Namespace: h.ns, Verb: "delete", Group: "events.k8s.io", Resource: "events"},
		"escalate through role binding": {Namespace: h.ns, Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
	}
	allowed := map[string]authorizationv1.ResourceAttributes{
		"write actor status":         {Namespace: h.ns, Verb: "update", Group: group, Resource: "actors", Subresource: "status"},
		"watch actors":               {Namespace: "any-namespace", Verb: "watch", Group: group, Resource: "actors"},
		"watch a Secret by name":     {Namespace: "any-namespace", Verb: "watch", Resource: "secrets", Name: "db"},
		"renew its lease":            {Namespace: h.ns, Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Name: h.pod},
		"record events on an actor":  {Namespace: "any-namespace", Verb: "create", Group: "events.k8s.io", Resource: "events"},
		"delete its lease (on exit)": {Namespace: h.ns, Verb: "delete", Group: "coordination.k8s.io", Resource: "leases", Name: h.pod},
	}
	s.env.CheckAccess(t, user, denied, allowed)
}
