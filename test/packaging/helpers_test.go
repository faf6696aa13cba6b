package packaging_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/troupe-dev/troupe/internal/testutil"
)

// Where the chart is installed in these tests, as docs/install.md does.
const (
	release   = "troupe"
	namespace = "troupe-system"
)

var tools struct {
	once  sync.Once
	paths map[string]string
	err   error
}

// tool returns the path of helm or kubectl, built from source by
// hack/build-k8s.sh and cached (the first build takes minutes; later ones
// print the cached path at once). Both are built in one call so that a cold
// cache builds each once.
func tool(t *testing.T, name string) string {
	t.Helper()
	root := testutil.RepoRoot(t)
	tools.once.Do(func() {
		names := []string{"helm", "kubectl"}
		cmd := exec.Command(filepath.Join(root, "hack", "build-k8s.sh"), names...)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			tools.err = fmt.Errorf("hack/build-k8s.sh %s: %w\n%s", strings.Join(names, " "), err, stderr.String())
			return
		}
		paths := strings.Fields(string(out))
		if len(paths) != len(names) {
			tools.err = fmt.Errorf("hack/build-k8s.sh printed %q, want one path per tool %v", out, names)
			return
		}
		tools.paths = map[string]string{}
		for i, n := range names {
			tools.paths[n] = paths[i]
		}
	})
	if tools.err != nil {
		t.Fatal(tools.err)
	}
	p, ok := tools.paths[name]
	if !ok {
		t.Fatalf("no tool %q", name)
	}
	return p
}

// run runs name with args in the repository root and returns its stdout;
// a failure carries stderr.
func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = testutil.RepoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// kubeVersion is the Kubernetes version the client libraries in go.mod
// belong to (k8s.io/api v0.X.Y is released with v1.X.Y): helm template
// assumes v1.20 otherwise, older than the chart's kubeVersion allows.
func kubeVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/api v0\.(\d+)\.(\d+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod requires no k8s.io/api v0.X.Y")
	}
	return fmt.Sprintf("1.%s.%s", m[1], m[2])
}

// manifest is a list of rendered objects.
type manifest []*unstructured.Unstructured

// decode reads every YAML document of data; empty ones are skipped.
func decode(data []byte) (manifest, error) {
	var out manifest
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj map[string]any
		if err := d.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decoding document %d: %w", len(out)+1, err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document %d has no kind or apiVersion: %v", len(out)+1, obj)
		}
		out = append(out, u)
	}
}

func decodeFile(t *testing.T, rel string) manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decode(data)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return m
}

// renderChart runs helm template on charts/troupe as release troupe in
// namespace troupe-system, with the values files and --set flags given.
func renderChart(t *testing.T, values string, sets ...string) manifest {
	t.Helper()
	out, err := renderChartErr(t, values, sets...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decode([]byte(out))
	if err != nil {
		t.Fatalf("helm template output: %v", err)
	}
	return m
}

func renderChartErr(t *testing.T, values string, sets ...string) (string, error) {
	t.Helper()
	args := []string{"template", release, "charts/troupe", "--namespace", namespace, "--kube-version", kubeVersion(t)}
	if values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return run(t, helmEnv(t), tool(t, "helm"), args...)
}

// helmEnv keeps helm's cache, config and data out of the user's home.
func helmEnv(t *testing.T) []string {
	d := t.TempDir()
	return []string{"HELM_CACHE_HOME=" + d + "/cache", "HELM_CONFIG_HOME=" + d + "/config", "HELM_DATA_HOME=" + d + "/data"}
}

// kustomize builds a kustomization directory (relative to the repository
// root, or absolute) with kubectl's kustomize.
func kustomize(t *testing.T, dir string) manifest {
	t.Helper()
	out, err := run(t, nil, tool(t, "kubectl"), "kustomize", dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decode([]byte(out))
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	return m
}

// all returns the objects of kind.
func (m manifest) all(kind string) manifest {
	var out manifest
	for _, o := range m {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// get returns the object of kind and name (any namespace), or nil.
func (m manifest) get(kind, name string) *unstructured.Unstructured {
	for _, o := range m {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// in returns the objects in namespace ns.
func (m manifest) in(ns string) manifest {
	var out manifest
	for _, o := range m {
		if o.GetNamespace() == ns {
			out = append(out, o)
		}
	}
	return out
}

// getIn returns the object of kind and name in namespace ns ("" for a
// cluster-scoped one), or nil: a Role of one name may be in several.
func (m manifest) getIn(kind, ns, name string) *unstructured.Unstructured {
	for _, o := range m {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return o
		}
	}
	return nil
}

// one returns the only object of kind; it fails t when there are others or
// none.
func (m manifest) one(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	objs := m.all(kind)
	if len(objs) != 1 {
		var names []string
		for _, o := range objs {
			names = append(names, o.GetName())
		}
		t.Fatalf("%d objects of kind %s %v, want exactly one", len(objs), kind, names)
	}
	return objs[0]
}

// typed converts o into out, failing on fields out's type doesn't have
// (a misspelt field would otherwise be dropped by the API server).
func typed[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return out
}

// deployment is the manager's Deployment (the gateway, when enabled, has
// the other).
func deployment(t *testing.T, m manifest) *appsv1.Deployment {
	t.Helper()
	var managers manifest
	for _, o := range m.all("Deployment") {
		if o.GetLabels()["app.kubernetes.io/component"] != "gateway" {
			managers = append(managers, o)
		}
	}
	return typed[appsv1.Deployment](t, managers.one(t, "Deployment"))
}

func daemonSet(t *testing.T, m manifest) *appsv1.DaemonSet {
	t.Helper()
	return typed[appsv1.DaemonSet](t, m.one(t, "DaemonSet"))
}

// container returns the pod's container named name.
func container(t *testing.T, pod *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

// flagValue returns the value of --name=value among args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// port returns the container port named name.
func port(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return 0
}

// rules returns the rules of the Role or ClusterRole o.
func rules(t *testing.T, o *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	switch o.GetKind() {
	case "Role":
		return typed[rbacv1.Role](t, o).Rules
	case "ClusterRole":
		return typed[rbacv1.ClusterRole](t, o).Rules
	}
	t.Fatalf("%s %s is not a role", o.GetKind(), o.GetName())
	return nil
}

// grant is one permission a rule gives: a verb on a resource of an API
// group, on every object or on one name.
type grant struct{ group, resource, verb, name string }

func (g grant) String() string {
	s := g.verb + " " + g.resource
	if g.group != "" {
		s += "." + g.group
	}
	if g.name != "" {
		s += "/" + g.name
	}
	return s
}

// grants expands rules into their permissions, so that two rule lists
// that grant the same in a different grouping or order compare equal.
func grants(rules []rbacv1.PolicyRule) map[grant]bool {
	out := map[grant]bool{}
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					for _, n := range names {
						out[grant{g, res, v, n}] = true
					}
				}
			}
		}
		for _, u := range r.NonResourceURLs {
			for _, v := range r.Verbs {
				out[grant{"", "url:" + u, v, ""}] = true
			}
		}
	}
	return out
}

// diffGrants lists what only want and only got hold, or "" when equal.
func diffGrants[K comparable](want, got map[K]bool) string {
	var missing, extra []string
	for g := range want {
		if !got[g] {
			missing = append(missing, fmt.Sprint(g))
		}
	}
	for g := range got {
		if !want[g] {
			extra = append(extra, fmt.Sprint(g))
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Sprintf("missing %v, extra %v", missing, extra)
}
