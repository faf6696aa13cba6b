//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	theaterv1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
)

// Environment of the deploy step, which hack/e2e-local.sh sets: the local
// cluster's registry (hack/local-cluster.sh env) and the components
// hack/components.sh built (the JavaScript example is 12 MB, too large for
// a ConfigMap).
const (
	registryEnv   = "TROUPE_REGISTRY"
	componentsEnv = "TROUPE_COMPONENTS"
)

// deploy: `troupe deploy --image` ships the JavaScript example (a
// componentize-js component) through the cluster's own registry: it is
// pushed, the Actor is applied pinned to its digest, the host pulls it
// from the registry and runs it, and deploy returns once it is Ready.
func (s *suite) deploy(t *testing.T) {
	reg, comps := os.Getenv(registryEnv), os.Getenv(componentsEnv)
	if reg == "" || comps == "" {
		t.Skipf("%s or %s is not set (hack/e2e-local.sh sets both): no registry or no JavaScript component to deploy", registryEnv, componentsEnv)
	}
	cli := filepath.Join(s.tmp, "bin", "troupe")
	s.runOK(t, "go", "build", "-o", cli, "./cmd/troupe")
	const name = "js-hello"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		a := &theaterv1alpha1.Actor{}
		a.Namespace, a.Name = sampleNS, name
		if err := client.IgnoreNotFound(s.kube.Delete(ctx, a)); err != nil {
			t.Errorf("deleting %s: %v", name, err)
			return
		}
		// Gone before the next step, which counts the sample actors.
		for ctx.Err() == nil {
			if err := s.kube.Get(ctx, client.ObjectKey{Namespace: sampleNS, Name: name}, a); apierrors.IsNotFound(err) {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		t.Errorf("%s was not deleted within 2m", name)
	})
	begin := time.Now()
	out := s.runOK(t, cli, "deploy", "-n", sampleNS, "--image", reg+"/e2e/js-hello", "--wait", "5m", "--env", "GREETING=Hello", "--initial-state", `{"count":0}`,
		filepath.Join(comps, "js-hello.wasm"), name)
	t.Logf("troupe deploy took %s:\n%s", time.Since(begin).Round(time.Millisecond), out)
	if !strings.Contains(out, "pushed "+reg+"/e2e/js-hello@sha256:") || !strings.Contains(out, "Ready on ") {
		t.Fatalf("troupe deploy said %q: want the pushed digest and Ready", out)
	}
	a := s.actor(t, name)
	if !strings.HasPrefix(a.Spec.Component.Image, reg+"/e2e/js-hello@sha256:") || a.Spec.Component.SHA256 == "" {
		t.Errorf("the Actor's component is %+v: want the registry's digest and the module's SHA-256", a.Spec.Component)
	}
	if !meta.IsStatusConditionTrue(a.Status.Conditions, theaterv1alpha1.ConditionReady) || a.Status.Chain == nil || a.Status.Chain.Length == 0 {
		t.Errorf("the deployed actor's status: %+v", a.Status)
	}
}
