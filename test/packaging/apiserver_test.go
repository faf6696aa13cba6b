package packaging_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/troupe-dev/troupe/internal/component"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// TestManifestsAcceptedByAPIServer submits every object of every install
// (the chart with default and non-default values, config/default, and the
// samples with the example actors built by make samples) to a real
// kube-apiserver as a server-side dry run with strict field validation: a
// misspelt or misplaced field, an invalid value, a ConfigMap over 1 MiB or
// an Actor the CRD's rules reject fails here rather than on a cluster.
func TestManifestsAcceptedByAPIServer(t *testing.T) {
	installs := map[string]func(t *testing.T) manifest{
		"chart defaults":           func(t *testing.T) manifest { return renderChart(t, "") },
		"chart non-default values": func(t *testing.T) manifest { return renderChart(t, nonDefaultValues) },
		"chart with the gateway":   func(t *testing.T) manifest { return renderChart(t, nonDefaultValues, "gateway.enabled=true") },
		"config/default":           func(t *testing.T) manifest { return kustomize(t, "config/default") },
		"config/confined":          func(t *testing.T) manifest { return kustomize(t, "config/confined") },
		"config/samples":           builtSamples,
	}
	rendered := map[string]manifest{}
	for name, render := range installs {
		rendered[name] = render(t) // before the control plane starts: make samples takes a while
	}

	env := envtestutil.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createNamespaces(ctx, t, env, append([]string{namespace, "actors"}, actorNamespaces...)...)
	t.Run("helm install --dry-run=server", func(t *testing.T) {
		notes := helmInstallDryRun(t, env)
		for _, want := range []string{
			"rollout status deployment/troupe-manager",
			"rollout status daemonset/troupe-host",
			"get leases -l theater.troupe.dev/host=true",
			"kubectl -n default create configmap hello-wasm",
			"wait --for=condition=Ready actor/hello",
			"port-forward pod/",
			"troupe chain show --from-host http://127.0.0.1:8082 default/hello",
			"helm uninstall troupe -n troupe-system",
			// Every Secret of the cluster: the user must hear it.
			"WARNING: host.actorNamespaces is empty",
			"--set 'host.actorNamespaces={team-a,team-b}'",
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES do not say %q:\n%s", want, notes)
			}
		}
	})
	t.Run("helm install --dry-run=server, gateway", func(t *testing.T) {
		notes := helmInstallDryRun(t, env, "--set", "gateway.enabled=true")
		for _, want := range []string{"kubectl get apiservice v1alpha1.gateway.troupe.dev", "troupe request -n default hello hi"} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES do not say %q:\n%s", want, notes)
			}
		}
	})
	t.Run("helm install --dry-run=server, confined hosts", func(t *testing.T) {
		notes := helmInstallDryRun(t, env, "--set", "host.actorNamespaces={team-a,team-b}")
		for _, want := range []string{
			"namespaces team-a, team-b only",
			"NamespaceNotServed",
			// The hello actor goes where a host runs it.
			"kubectl -n team-a create configmap hello-wasm",
			"troupe chain show --from-host http://127.0.0.1:8082 team-a/hello",
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES do not say %q:\n%s", want, notes)
			}
		}
		if strings.Contains(notes, "WARNING") || strings.Contains(notes, "-n default") {
			t.Errorf("NOTES of confined hosts warn, or run the hello actor in namespace default:\n%s", notes)
		}
	})
	for name, m := range rendered {
		t.Run(name, func(t *testing.T) {
			if m == nil {
				t.Skip("not rendered")
			}
			for _, o := range m {
				if o.GetKind() == "ServiceMonitor" {
					continue // prometheus-operator's CRD is not installed; the chart tests check it
				}
				if err := dryRun(ctx, env.Client, o); err != nil {
					t.Errorf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}
		})
	}
}

// dryRun creates o, or updates it when it exists (the namespace and the
// CRD do), without persisting anything.
func dryRun(ctx context.Context, c client.Client, o *unstructured.Unstructured) error {
	obj := o.DeepCopy()
	existing := &unstructured.Unstructured{}
	existing.SetGroupVersionKind(obj.GroupVersionKind())
	err := c.Get(ctx, client.ObjectKeyFromObject(obj), existing)
	switch {
	case apierrors.IsNotFound(err):
		return c.Create(ctx, obj, client.DryRunAll, client.FieldValidation("Strict"))
	case err != nil:
		return err
	}
	obj.SetResourceVersion(existing.GetResourceVersion())
	return c.Update(ctx, obj, client.DryRunAll, client.FieldValidation("Strict"))
}

// builtSamples builds the example actors with make samples into a copy of
// config/samples and returns what kustomize makes of it, in namespace
// default; nil with -short. Each module must fit a ConfigMap and be a
// gzipped core module.
func builtSamples(t *testing.T) manifest {
	t.Helper()
	if testing.Short() {
		t.Log("-short: not building the example actors for config/samples")
		return nil
	}
	root := testutil.RepoRoot(t)
	dir := filepath.Join(t.TempDir(), "samples")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, "config", "samples"))); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "components")
	if err := os.RemoveAll(out); err != nil { // whatever make samples left in the tree
		t.Fatal(err)
	}
	if _, err := run(t, nil, "make", "-s", "samples", "SAMPLES_OUT="+out); err != nil {
		t.Fatal(err)
	}
	m := kustomize(t, dir)
	modules := 0
	for _, o := range m {
		if o.GetNamespace() == "" {
			o.SetNamespace("default")
		}
		if o.GetKind() != "ConfigMap" {
			continue
		}
		cm := typed[corev1.ConfigMap](t, o)
		for key, data := range cm.BinaryData {
			modules++
			// The API server's limit is 1 MiB for the whole ConfigMap;
			// warn well before an example outgrows it.
			if len(data) > 1<<20-64<<10 {
				t.Errorf("ConfigMap %s: %s is %d bytes, too close to a ConfigMap's 1 MiB", cm.Name, key, len(data))
			}
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("ConfigMap %s key %s: %v", cm.Name, key, err)
			}
			mod, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("ConfigMap %s key %s: %v", cm.Name, key, err)
			}
			if err := component.CheckModule(key, mod); err != nil {
				t.Errorf("ConfigMap %s: %v", cm.Name, err)
			}
		}
	}
	if actors := len(m.all("Actor")); modules != actors || actors < 4 {
		t.Errorf("config/samples makes %d Actors and %d modules, want one module per actor, at least four", actors, modules)
	}
	return m
}

// createNamespaces creates namespaces on env's API server.
func createNamespaces(ctx context.Context, t *testing.T, env *envtestutil.Env, names ...string) {
	t.Helper()
	for _, name := range names {
		ns := &corev1.Namespace{}
		ns.Name = name
		if err := env.Client.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
}

// helmInstallDryRun runs helm install with args against the API server,
// without persisting anything, and returns the NOTES it prints: Helm's own
// checks (kubeVersion against the server's, the values schema) pass, and
// the NOTES tell the user what to run next with the names the chart gave
// its objects.
func helmInstallDryRun(t *testing.T, env *envtestutil.Env, args ...string) string {
	user, err := env.Environment.AddUser(envtest.User{Name: "packaging-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(f, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	// The CRD is already installed (not by Helm): a real install would
	// adopt nothing it does not own, so leave it out here.
	out, err := run(t, append(helmEnv(t), "KUBECONFIG="+f), tool(t, "helm"), append([]string{"install", release, "charts/troupe",
		"--namespace", namespace, "--dry-run=server", "--set", "crds.install=false"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	_, notes, ok := strings.Cut(out, "\nNOTES:\n")
	if !ok {
		t.Fatalf("helm install printed no NOTES:\n%s", out)
	}
	return notes
}
