package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/component"
	"github.com/troupe-dev/troupe/internal/component/componenttest"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// TestDeploy against a real API server: a small module goes into a
// ConfigMap and a large one (or any, with --image) to the registry by
// digest; the Actor is applied pinned to the module's SHA-256 and deploy
// waits for its Ready condition of the new generation, failing with the
// condition's message when the actor fails; a second deploy changes only
// its own fields.
func TestDeploy(t *testing.T) {
	isolate(t)
	env := envtestutil.Start(t)
	kc := env.Kubeconfig(t)
	ns := env.Namespace(t)
	ctx := t.Context()
	wasm := testutil.ExampleWasm(t, "hello")
	file := filepath.Join(t.TempDir(), "hello.wasm")
	if err := os.WriteFile(file, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := strings.TrimPrefix(component.Digest(wasm), "sha256:")
	get := func(name string) *v1alpha1.Actor {
		var a v1alpha1.Actor
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &a); err != nil {
			t.Fatal(err)
		}
		return &a
	}

	// The ConfigMap route, not waiting.
	stdout, stderr, code := runCLI(t, "deploy", "--kubeconfig", kc, "-n", ns, "--env", "GREETING=Hi", "--initial-state", `{"count":0}`, "--wait", "0", file, "hello")
	if code != 0 {
		t.Fatalf("deploy: exit %d: %s", code, stderr)
	}
	a := get("hello")
	src := a.Spec.Component
	if src.ConfigMap == nil || src.ConfigMap.Name != "hello-module" || src.SHA256 != sum || len(a.Spec.Env) != 1 || a.Spec.Env[0].Value == nil || *a.Spec.Env[0].Value != "Hi" || a.Spec.InitialState != `{"count":0}` {
		t.Fatalf("the Actor's spec: %+v (stdout %q)", a.Spec, stdout)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "hello-module"}, &cm); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(cm.BinaryData["module.wasm.gz"]))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, wasm) {
		t.Fatal("the ConfigMap does not hold the module")
	}

	// Someone else's field survives a redeploy; deploy's own change.
	a.Spec.Suspend = false
	a.Annotations = map[string]string{"team": "a"}
	if err := env.Client.Update(ctx, a); err != nil {
		t.Fatal(err)
	}

	// The registry route, waiting: a stand-in for the host marks the new
	// generation Ready.
	reg := componenttest.StartRegistry(t, "", "")
	gen := a.Generation
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			var cur v1alpha1.Actor
			if env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "hello"}, &cur) == nil && cur.Generation > gen {
				meta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
					Reason: "Running", Message: "running", ObservedGeneration: cur.Generation})
				cur.Status.HostPod, cur.Status.NodeName = "troupe-host-x", "node-a"
				if env.Client.Status().Update(ctx, &cur) == nil {
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	stdout, stderr, code = runCLI(t, "deploy", "--kubeconfig", kc, "-n", ns, "--image", reg.Host+"/actors/hello", "--wait", "30s", file, "hello")
	if code != 0 || !strings.Contains(stdout, "Ready on troupe-host-x (node node-a)") {
		t.Fatalf("deploy --image: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	a = get("hello")
	if !strings.HasPrefix(a.Spec.Component.Image, reg.Host+"/actors/hello@sha256:") || a.Spec.Component.ConfigMap != nil || a.Spec.Component.SHA256 != sum {
		t.Errorf("component after deploy --image: %+v", a.Spec.Component)
	}
	if a.Annotations["team"] != "a" || len(a.Spec.Env) != 0 {
		t.Errorf("annotations %v, env %v: want another manager's annotation kept and the env deploy no longer sets gone", a.Annotations, a.Spec.Env)
	}

	// A failed actor: deploy says why, exit 1.
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			var cur v1alpha1.Actor
			if env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "broken"}, &cur) == nil {
				meta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
					Reason: "InitFailed", Message: "init returned an error: boom", ObservedGeneration: cur.Generation})
				cur.Status.Phase = v1alpha1.PhaseFailed
				if env.Client.Status().Update(ctx, &cur) == nil {
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if _, stderr, code := runCLI(t, "deploy", "--kubeconfig", kc, "-n", ns, "--wait", "30s", file, "broken"); code != exitFailed || !strings.Contains(stderr, "InitFailed: init returned an error: boom") {
		t.Errorf("deploy of a failing actor: exit %d: %s", code, stderr)
	}

	// Usage errors before anything is written.
	for name, args := range map[string][]string{
		"bad name": {"deploy", "--kubeconfig", kc, "-n", ns, file, "Hello_1"},
		"bad env":  {"deploy", "--kubeconfig", kc, "-n", ns, "--env", "NOEQUALS", file, "x"},
		"no file":  {"deploy", "--kubeconfig", kc, "-n", ns, filepath.Join(t.TempDir(), "none.wasm"), "x"},
	} {
		if _, stderr, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%s: exit %d: %s", name, code, stderr)
		}
	}
}

// TestClientError: each API answer gets the CLI's exit status; a cluster
// without the Actor CRD (the REST mapper's no-match) is "no Troupe here".
func TestClientError(t *testing.T) {
	gr := schema.GroupResource{Group: "theater.troupe.dev", Resource: "actors"}
	tests := map[string]struct {
		err  error
		code int
	}{
		"no CRD":       {&meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "theater.troupe.dev", Kind: "Actor"}}, exitNoServer},
		"unauthorized": {apierrors.NewUnauthorized("no"), exitUnauthenticated},
		"forbidden":    {apierrors.NewForbidden(gr, "x", errors.New("no")), exitForbidden},
		"invalid":      {apierrors.NewBadRequest("bad"), exitFailed},
		"other status": {apierrors.NewConflict(gr, "x", errors.New("again")), exitFailed},
		"no answer":    {errors.New("dial tcp: connection refused"), exitNoServer},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var ee *exitError
			if err := clientError("applying", tc.err); !errors.As(err, &ee) || ee.code != tc.code {
				t.Fatalf("clientError(%v) = %v, want exit %d", tc.err, err, tc.code)
			}
		})
	}
}
