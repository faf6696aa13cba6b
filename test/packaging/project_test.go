package packaging_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/troupe-dev/troupe/internal/testutil"
)

// TestPROJECT checks the kubebuilder PROJECT file describes the project as
// it is: layout v4, the module, and each resource as the CRDs define it,
// with its Go package and its controller.
func TestPROJECT(t *testing.T) {
	root := testutil.RepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "PROJECT"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Domain      string   `json:"domain"`
		Layout      []string `json:"layout"`
		ProjectName string   `json:"projectName"`
		Repo        string   `json:"repo"`
		Version     string   `json:"version"`
		Resources   []struct {
			API *struct {
				CRDVersion string `json:"crdVersion"`
				Namespaced bool   `json:"namespaced"`
			} `json:"api"`
			Controller bool   `json:"controller"`
			Domain     string `json:"domain"`
			Group      string `json:"group"`
			Kind       string `json:"kind"`
			Path       string `json:"path"`
			Version    string `json:"version"`
		} `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("PROJECT: %v", err)
	}
	gomod, _ := os.ReadFile(filepath.Join(root, "go.mod"))
	module := regexp.MustCompile(`(?m)^module (\S+)`).FindSubmatch(gomod)
	if p.Version != "3" || !slices.Equal(p.Layout, []string{"go.kubebuilder.io/v4"}) || p.ProjectName != "troupe" ||
		module == nil || p.Repo != string(module[1]) {
		t.Errorf("PROJECT: version %q, layout %v, projectName %q, repo %q; want 3, [go.kubebuilder.io/v4], troupe, the module %s",
			p.Version, p.Layout, p.ProjectName, p.Repo, module[1])
	}

	crds := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, o := range kustomizeCRDs(t) {
		crds[o.Spec.Group+"/"+o.Spec.Names.Kind] = o
	}
	if len(p.Resources) != len(crds) {
		t.Errorf("PROJECT lists %d resources, config/crd/bases defines %d CRDs", len(p.Resources), len(crds))
	}
	for _, r := range p.Resources {
		group := r.Group + "." + r.Domain
		crd := crds[group+"/"+r.Kind]
		if crd == nil || r.Domain != p.Domain {
			t.Errorf("PROJECT resource %s %s (domain %s): no such CRD in config/crd/bases", group, r.Kind, r.Domain)
			continue
		}
		served := slices.ContainsFunc(crd.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Name == r.Version })
		if !served || r.API == nil || r.API.CRDVersion != "v1" || r.API.Namespaced != (crd.Spec.Scope == apiextensionsv1.NamespaceScoped) {
			t.Errorf("PROJECT resource %s %s %s: api %+v does not match the CRD (scope %s)", group, r.Version, r.Kind, r.API, crd.Spec.Scope)
		}
		if want := string(module[1]) + "/api/" + r.Version; r.Path != want {
			t.Errorf("PROJECT resource %s: path %s, want %s", r.Kind, r.Path, want)
		}
		out, err := run(t, nil, "go", "list", "-f", "{{.Name}}", r.Path)
		if err != nil || strings.TrimSpace(out) != r.Version {
			t.Errorf("PROJECT resource %s: package %s: %q %v", r.Kind, r.Path, out, err)
		}
		reconciler := fmt.Sprintf("type %sReconciler struct", r.Kind)
		src, _ := filepath.Glob(filepath.Join(root, "controllers", "*.go"))
		has := false
		for _, f := range src {
			b, _ := os.ReadFile(f)
			has = has || strings.Contains(string(b), reconciler)
		}
		if r.Controller != has {
			t.Errorf("PROJECT resource %s: controller %v, but controllers/ declaring %q is %v", r.Kind, r.Controller, reconciler, has)
		}
	}
}

func kustomizeCRDs(t *testing.T) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, o := range kustomize(t, "config/crd").all("CustomResourceDefinition") {
		out = append(out, typed[apiextensionsv1.CustomResourceDefinition](t, o))
	}
	return out
}
