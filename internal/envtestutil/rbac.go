package envtestutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LoadRBAC reads RBAC manifests (files in dir, relative to the module root,
// e.g. "config/rbac") as kustomize would deploy them into namespace ns:
// namespace "system" becomes ns, and cluster-scoped names get ns as a
// prefix so that suites sharing a control plane don't collide.
func LoadRBAC(t testing.TB, ns, dir string, files ...string) []client.Object {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for _, f := range files {
		path := filepath.Join(root, dir, f)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading %s (run make manifests): %v", path, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("decoding %s: %v", path, err)
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

// InstallRBAC creates what LoadRBAC reads, for t: deleted at its cleanup.
func (e *Env) InstallRBAC(t testing.TB, ns, dir string, files ...string) {
	t.Helper()
	for _, obj := range LoadRBAC(t, ns, dir, files...) {
		if err := e.Client.Create(context.Background(), obj); err != nil {
			t.Fatalf("creating %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
		}
		t.Cleanup(func() { _ = e.Client.Delete(context.Background(), obj) })
	}
}

// ServiceAccountUser is the user name of service account sa of namespace ns.
func ServiceAccountUser(ns, sa string) string {
	return fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa)
}

// AsServiceAccount is e's config acting as service account sa of namespace
// ns, with that account's groups: what a pod running as it may do.
func (e *Env) AsServiceAccount(ns, sa string) *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: ServiceAccountUser(ns, sa),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	return cfg
}

// CheckAccess asks the API server (SubjectAccessReviews) whether user may
// do each of denied and allowed, named by what it means, and fails t for
// each answer that is not the expected one: least privilege, both ways.
func (e *Env) CheckAccess(t testing.TB, user string, denied, allowed map[string]authorizationv1.ResourceAttributes) {
	t.Helper()
	check := func(what string, attrs authorizationv1.ResourceAttributes, want bool) {
		t.Helper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"}, ResourceAttributes: &attrs,
		}}
		if err := e.Client.Create(context.Background(), sar); err != nil {
			t.Fatalf("access review: %v", err)
		}
		if sar.Status.Allowed != want {
			t.Errorf("%s may %s: %v, want %v", user, what, sar.Status.Allowed, want)
		}
	}
	for what, attrs := range denied {
		check(what, attrs, false)
	}
	for what, attrs := range allowed {
		check(what, attrs, true)
	}
}
