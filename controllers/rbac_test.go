package controllers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
		before: func(ns string) {
			for _, obj := range loadRBAC(t, ns) {
				if err := env.Client.Create(context.Background(), obj); err != nil {
					t.Fatalf("creating %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
				}
				t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
			}
		},
		config: func(ns string) *rest.Config {
			cfg := rest.CopyConfig(env.Config)
			cfg.Impersonate = rest.ImpersonationConfig{
				UserName: fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa),
				Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			}
			return cfg
		},
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

	// Least privilege: what the manager must not do.
	user := fmt.Sprintf("system:serviceaccount:%s:%s", h.ns, sa)
	denied := map[string]authorizationv1.ResourceAttributes{
		"change an actor's spec":        {Namespace: h.ns, Verb: "update", Group: v1alpha1.GroupVersion.Group, Resource: "actors"},
		"delete an actor":               {Namespace: h.ns, Verb: "delete", Group: v1alpha1.GroupVersion.Group, Resource: "actors"},
		"read secrets":                  {Namespace: h.ns, Verb: "get", Resource: "secrets"},
		"write a host lease":            {Namespace: h.ns, Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Name: "host-1"},
		"read leases in another ns":     {Namespace: "kube-system", Verb: "list", Group: "coordination.k8s.io", Resource: "leases"},
		"change nodes":                  {Verb: "update", Resource: "nodes"},
		"set ownerReference finalizers": {Namespace: h.ns, Verb: "update", Group: v1alpha1.GroupVersion.Group, Resource: "actors", Subresource: "finalizers"},
	}
	allowed := map[string]authorizationv1.ResourceAttributes{
		"update actor status": {Namespace: h.ns, Verb: "update", Group: v1alpha1.GroupVersion.Group, Resource: "actors", Subresource: "status"},
		"watch host leases":   {Namespace: h.ns, Verb: "watch", Group: "coordination.k8s.io", Resource: "leases"},
	}
	check := func(what string, attrs authorizationv1.ResourceAttributes, want bool) {
		t.Helper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"}, ResourceAttributes: &attrs,
		}}
		if err := h.c.Create(context.Background(), sar); err != nil {
			t.Fatalf("access review: %v", err)
		}
		if sar.Status.Allowed != want {
			t.Errorf("manager may %s: %v, want %v", what, sar.Status.Allowed, want)
		}
	}
	for what, attrs := range denied {
		check(what, attrs, false)
	}
	for what, attrs := range allowed {
		check(what, attrs, true)
	}
}

// loadRBAC reads the manager's RBAC from config/rbac as kustomize would
// deploy it into ns: namespace "system" becomes ns, and cluster-scoped
// names get ns as a prefix so suites don't collide.
func loadRBAC(t *testing.T, ns string) []client.Object {
	t.Helper()
	root, err := envtestutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for _, f := range managerRBAC {
		data, err := os.ReadFile(filepath.Join(root, "config", "rbac", f))
		if err != nil {
			t.Fatalf("reading %s (run make manifests): %v", f, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("decoding %s: %v", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			relocate(&u, ns)
			objs = append(objs, &u)
		}
	}
	return objs
}

func relocate(u *unstructured.Unstructured, ns string) {
	switch u.GetKind() {
	case "ClusterRole":
		u.SetName(ns + "-" + u.GetName())
	case "ClusterRoleBinding":
		u.SetName(ns + "-" + u.GetName())
		name, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
		_ = unstructured.SetNestedField(u.Object, ns+"-"+name, "roleRef", "name")
	}
	if u.GetNamespace() == "system" {
		u.SetNamespace(ns)
	}
	subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["namespace"] == "system" {
			m["namespace"] = ns
		}
	}
	if subjects != nil {
		_ = unstructured.SetNestedSlice(u.Object, subjects, "subjects")
	}
}
