package integration

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/component/componenttest"
	"github.com/troupe-dev/troupe/internal/host"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// testJSComponentThroughTheOperator: a JavaScript actor as componentize-js
// emits it (a 12 MB WebAssembly component, 3.7 MB gzipped: over what a
// ConfigMap holds) is pushed to a registry as an OCI artifact, applied as
// an Actor, placed by the manager and run by a host as it comes: it becomes
// Ready, its console.log reaches the host's log, and the head in its status
// is the head of the chain its host keeps, whose ActorStart says it ran a
// component.
func (s *suite) testJSComponentThroughTheOperator(t *testing.T) {
	wasm := testutil.BuiltComponent(t, "js-hello")
	c := s.newCluster(t, clusterOptions{})
	g := c.g()
	// The compilation cache the engine's component tests share: a cold
	// compile of the JS main module takes 10 to 60 s on two cores.
	h := c.startHost("host", func(hc *host.Config) {
		if base, err := os.UserCacheDir(); err == nil {
			hc.CompilationCacheDir = filepath.Join(base, "troupe", "testutil-wazero")
		}
	})
	const user, pass = "robot", "registry-pass-789"
	registry := componenttest.StartRegistry(t, user, pass)
	registry.Push(t, "actors/js-hello", "v1", componenttest.Artifact(t, wasm, componenttest.WasmLayer))
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	g.Expect(c.c.Create(c.ctx(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, registry.Host, auth))},
	})).To(Succeed())
	c.create("js-hello", v1alpha1.ActorSpec{
		Component: v1alpha1.ComponentSource{Image: registry.Host + "/actors/js-hello:v1",
			ImagePullSecrets: []v1alpha1.LocalObjectReference{{Name: "regcred"}}},
		InitialState: `{"count":0}`,
		Env:          []v1alpha1.EnvVar{{Name: "GREETING", Value: ptr.To("Hej")}},
	})
	a := c.waitReady("js-hello", slow)
	g.Expect(c.hostOf(a)).To(Equal(h))

	events, err := h.chain("js-hello")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events).NotTo(BeEmpty())
	last := events[len(events)-1]
	g.Expect(a.Status.Chain.Head).To(Equal(last.Hash.String()), "status head vs the host's chain endpoint")
	g.Expect(string(events[0].Data)).To(ContainSubstring(`"format":"component"`), "ActorStart says a component ran")
	g.Expect(customEvents(events, "greeted")).To(HaveLen(1))
	g.Expect(h.logs.String()).To(ContainSubstring("Hej from js-hello ("), "console.log reaches the host's log")
}
