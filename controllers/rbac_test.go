package controllers

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// managerRBAC are the files of config/rbac that grant the manager its
// rights (the editor and viewer roles are for users).
var managerRBAC = []string{
	"service_account.yaml",
	"role.yaml",
	"role_binding.yaml",
	"host_lease_role_binding.yaml",
	"leader_election_role.yaml",
	"leader_election_role_binding.yaml",
}

// testRBAC runs the manager, leader election included, as the service
// account config/rbac creates, with exactly the roles generated from the
// reconciler's markers: a missing right fails placement, status, events or
// deletion; a superfluous one fails the access review below.
func testRBAC(t *testing.T, env *envtestutil.Env) {
	const sa = "controller-manager"
	h := newHarness(t, env, harnessOptions{
		leaderElection: true,
		before:         func(ns string) { env.InstallRBAC(t, ns, "config/rbac", managerRBAC...) },
		config:         func(ns string) *rest.Config { return env.AsServiceAccount(ns, sa) },
	})

	h.host("host-1", h.node("n1", nil), 10)
	h.actor("guarded")
	a := h.placed("guarded")
	h.expectEvent("guarded", v1alpha1.EventPlaced, "host-1")
	h.report("guarded", "host-1", a.Status.Epoch, running)
	NewWithT(t).Expect(h.c.Delete(context.Background(), a)).To(Succeed())
	h.report("guarded", "host-1", a.Status.Epoch, stoppedAndFlushed)
	h.g.Eventually(func() error { _, err := h.get("guarded"); return err }).Should(Satisfy(isNotFound))
	h.expectEvent("guarded", v1alpha1.EventFinalizerRemoved, "flushed")

	// Least privilege: what the manager must not do, and must.
	env.CheckAccess(t, envtestutil.ServiceAccountUser(h.ns, sa), map[string]authorizationv1.ResourceAttributes{
		"change an actor's spec":           {Namespace: h.ns, Verb: "update", Group: v1alpha1.GroupVersion.Group, Resource: "actors"},
		"delete an actor":                  {Namespace: h.ns, Verb: "delete", Group: v1alpha1.GroupVersion.Group, Resource: "actors"},
		"read secrets of other namespaces": {Namespace: "kube-system", Verb: "get", Resource: "secrets"},
		"list secrets":                     {Namespace: h.ns, Verb: "list", Resource: "secrets"},
		"write a host lease":               {Namespace: h.ns, Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Name: "host-1"},
		"read leases in another ns":        {Namespace: "kube-system", Verb: "list", Group: "coordination.k8s.io", Resource: "leases"},
		"change nodes":                     {Verb: "update", Resource: "nodes"},
		"set ownerReference finalizers":    {Namespace: h.ns, Verb: "update", Group: v1alpha1.GroupVersion.Group, Resource: "actors", Subresource: "finalizers"},
	}, map[string]authorizationv1.ResourceAttributes{
		"update actor status": {Namespace: h.ns, Verb: "update", Group: v1alpha1.GroupVersion.Group, Resource: "actors", Subresource: "status"},
		"watch host leases":   {Namespace: h.ns, Verb: "watch", Group: "coordination.k8s.io", Resource: "leases"},
		// The peer CA and certificates live in the manager's own
		// namespace (here the actors' too): it reads and writes them
		// by name, and lists none.
		"keep the peer CA": {Namespace: h.ns, Verb: "update", Resource: "secrets", Name: "troupe-peer-ca"},
	})
}
