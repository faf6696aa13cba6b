package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// hostServiceAccount is the host pods' identity in config/rbac/host.
const hostServiceAccount = "troupe-host"

// asServiceAccount runs the host as config/rbac/host's service account,
// with exactly the roles generated from the markers in rbac.go and in
// internal/kubeenv, bound as config/default binds them: cluster-wide.
func (s *suite) asServiceAccount(t *testing.T) hostOption {
	return func(cfg *Config) {
		s.env.InstallRBAC(t, cfg.PodNamespace, "config/rbac/host", "service_account.yaml", "role.yaml", "role_binding.yaml")
		s.env.InstallRBAC(t, cfg.PodNamespace, "config/rbac/host-env", "role.yaml", "role_binding.yaml")
		cfg.RestConfig = s.env.AsServiceAccount(cfg.PodNamespace, hostServiceAccount)
	}
}

// asConfinedServiceAccount runs the host as the chart confines it with
// host.actorNamespaces: config/rbac/host's roles, and the rules of
// config/rbac/host-env in a Role and RoleBinding of each of namespaces
// only; the host is told to run those namespaces' Actors.
func (s *suite) asConfinedServiceAccount(t *testing.T, namespaces ...string) hostOption {
	return func(cfg *Config) {
		s.env.InstallRBAC(t, cfg.PodNamespace, "config/rbac/host", "service_account.yaml", "role.yaml", "role_binding.yaml")
		var envRules []rbacv1.PolicyRule
		for _, o := range envtestutil.LoadRBAC(t, cfg.PodNamespace, "config/rbac/host-env", "role.yaml") {
			u := o.(*unstructured.Unstructured)
			var cr rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cr); err != nil {
				t.Fatal(err)
			}
			envRules = append(envRules, cr.Rules...)
		}
		if len(envRules) == 0 {
			t.Fatal("config/rbac/host-env/role.yaml grants nothing (run make manifests)")
		}
		for _, ns := range namespaces {
			role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "troupe-host-env"}, Rules: envRules}
			binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "troupe-host-env"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: cfg.PodNamespace, Name: hostServiceAccount}}}
			for _, o := range []client.Object{role, binding} {
				if err := s.env.Client.Create(context.Background(), o); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.env.Client.Delete(context.Background(), o) })
			}
		}
		cfg.ActorNamespaces = namespaces
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
		"list leases elsewhere":         {Namespace: "kube-system", Verb: "list", Group: "coordination.k8s.io", Resource: "leases"},
		"read pods":                     {Namespace: h.ns, Verb: "list", Resource: "pods"},
		"read nodes":                    {Verb: "get", Resource: "nodes"},
		"write core events (old API)":   {Namespace: h.ns, Verb: "create", Resource: "events"},
		"delete events":                 {Namespace: h.ns, Verb: "delete", Group: "events.k8s.io", Resource: "events"},
		"escalate through role binding": {Namespace: h.ns, Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
	}
	allowed := map[string]authorizationv1.ResourceAttributes{
		"write actor status":     {Namespace: h.ns, Verb: "update", Group: group, Resource: "actors", Subresource: "status"},
		"watch actors":           {Namespace: "any-namespace", Verb: "watch", Group: group, Resource: "actors"},
		"watch a Secret by name": {Namespace: "any-namespace", Verb: "watch", Resource: "secrets", Name: "db"},
		"list Secrets of the cluster (no host.actorNamespaces)": {Verb: "list", Resource: "secrets"},
		"renew its lease":            {Namespace: h.ns, Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Name: h.pod},
		"record events on an actor":  {Namespace: "any-namespace", Verb: "create", Group: "events.k8s.io", Resource: "events"},
		"delete its lease (on exit)": {Namespace: h.ns, Verb: "delete", Group: "coordination.k8s.io", Resource: "leases", Name: h.pod},
		// The other hosts' peer endpoints, for routing messages.
		"watch the host leases": {Namespace: h.ns, Verb: "watch", Group: "coordination.k8s.io", Resource: "leases"},
	}
	s.env.CheckAccess(t, user, denied, allowed)
}

// testConfinedToNamespaces: a host confined to the namespace of its pod
// (the chart's host.actorNamespaces) runs that namespace's actors with
// their ConfigMaps and Secrets, declares the namespace in its Lease, and
// refuses an actor of another namespace assigned to it: Ready=False,
// reason NamespaceNotServed, a Warning Event naming the namespace and the
// chart value, the phase unchanged, nothing read in that namespace and
// nothing written on the node. It can't read a Secret there, nor list the
// cluster's.
func (s *suite) testConfinedToNamespaces(t *testing.T) {
	g := NewWithT(t)
	other := s.env.Namespace(t)
	h := s.startHost(t, func(cfg *Config) { s.asConfinedServiceAccount(t, cfg.PodNamespace)(cfg) })
	hb := *h // the same host, as seen from the other namespace
	hb.ns = other

	for _, x := range []*harness{h, &hb} {
		g.Expect(x.c.Create(x.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: x.ns, Name: "db"},
			StringData: map[string]string{"password": "pw-" + x.ns}})).To(Succeed())
	}
	spec := func(x *harness, name string) v1alpha1.ActorSpec {
		sp := x.okSpec(name)
		sp.Env = []v1alpha1.EnvVar{fromSecret("DB_PASSWORD", "db", "password")}
		return sp
	}
	h.run("served", spec(h, "served"), 60*time.Second)

	intruder := hb.create("intruder", spec(&hb, "intruder"))
	intruder.Finalizers = []string{v1alpha1.ChainFlushFinalizer}
	g.Expect(hb.c.Update(hb.ctx(), intruder)).To(Succeed())
	hb.assign("intruder", h.pod, 1)
	c := hb.waitReason("intruder", v1alpha1.ReasonNamespaceNotServed, 20*time.Second)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Message).To(And(ContainSubstring("namespace "+other), ContainSubstring("host.actorNamespaces"),
		ContainSubstring("namespaces "+h.ns+" only")))
	a := hb.get("intruder")
	g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseScheduled), "a refusal is no failure: the phase stays")
	g.Expect(c.ObservedGeneration).To(Equal(a.Generation))
	g.Expect(a.Status.LastError).To(BeEmpty())
	g.Eventually(hb.events).WithArguments("intruder").Should(ContainElement(And(
		HavePrefix(v1alpha1.ReasonNamespaceNotServed+": "), ContainSubstring("host.actorNamespaces"))))
	_, err := os.Stat(filepath.Join(h.dataDir, other))
	g.Expect(os.IsNotExist(err)).To(BeTrue(), "the host wrote under %s for a refused actor: %v", other, err)
	g.Expect(h.metrics()).To(ContainSubstring(`troupe_host_actor_starts_total{result="NamespaceNotServed"} 1`))

	// The manager is told which namespaces the host runs.
	var l coordinationv1.Lease
	g.Expect(h.c.Get(h.ctx(), types.NamespacedName{Namespace: h.ns, Name: h.pod}, &l)).To(Succeed())
	g.Expect(l.Annotations).To(HaveKeyWithValue(v1alpha1.NamespacesAnnotation, h.ns))

	// A deleted refused actor is released as any other: Stopped, for its
	// epoch, without a chain.
	g.Expect(hb.c.Delete(hb.ctx(), hb.get("intruder"))).To(Succeed())
	stopped := hb.waitReason("intruder", v1alpha1.ReasonStopped, 20*time.Second)
	g.Expect(stopped.Message).NotTo(ContainSubstring("head"))
	// The served actor ran all along, and nothing was forbidden: the host
	// never asked for what it may not have.
	g.Expect(h.ready("served").Reason).To(Equal(v1alpha1.ReasonRunning))
	g.Expect(h.logs.String()).NotTo(ContainSubstring("forbidden"))

	user := envtestutil.ServiceAccountUser(h.ns, hostServiceAccount)
	group := v1alpha1.GroupVersion.Group
	denied := map[string]authorizationv1.ResourceAttributes{
		"read a Secret of another namespace":    {Namespace: other, Verb: "get", Resource: "secrets", Name: "db"},
		"watch Secrets of another namespace":    {Namespace: other, Verb: "watch", Resource: "secrets"},
		"read kube-system's Secrets":            {Namespace: "kube-system", Verb: "list", Resource: "secrets"},
		"list the cluster's Secrets":            {Verb: "list", Resource: "secrets"},
		"list the cluster's ConfigMaps":         {Verb: "list", Resource: "configmaps"},
		"read a ConfigMap of another namespace": {Namespace: other, Verb: "get", Resource: "configmaps"},
		"write a Secret of its namespace":       {Namespace: h.ns, Verb: "update", Resource: "secrets"},
	}
	allowed := map[string]authorizationv1.ResourceAttributes{
		"watch a Secret of its namespace by name": {Namespace: h.ns, Verb: "watch", Resource: "secrets", Name: "db"},
		"read a ConfigMap of its namespace":       {Namespace: h.ns, Verb: "get", Resource: "configmaps"},
		// What a refusal needs: see the Actor, write its status, say why.
		"watch its Actors everywhere":         {Verb: "watch", Group: group, Resource: "actors"},
		"write the status of another's Actor": {Namespace: other, Verb: "update", Group: group, Resource: "actors", Subresource: "status"},
		"record an Event there":               {Namespace: other, Verb: "create", Group: "events.k8s.io", Resource: "events"},
	}
	s.env.CheckAccess(t, user, denied, allowed)
}
