package host

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/component/componenttest"
	"github.com/troupe-dev/troupe/internal/testutil"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (s *suite) testOCIImage(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	const user, pass = "robot", "registry-pass-123"
	registry := componenttest.StartRegistry(t, user, pass)
	reg := registry.Host
	okWasm := testdata(t, "ok.wasm")
	d1 := registry.Push(t, "actors/ok", "v1", componenttest.Artifact(t, okWasm, componenttest.WasmLayer))
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	g.Expect(h.c.Create(h.ctx(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg, auth))},
	})).To(Succeed())

	image := reg + "/actors/ok:v1"
	h.create("oci", v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{Image: image,
		ImagePullSecrets: []v1alpha1.LocalObjectReference{{Name: "regcred"}}}})
	h.assign("oci", h.pod, 1)
	c := h.waitReason("oci", v1alpha1.ReasonRunning, 20*time.Second)
	resolved := reg + "/actors/ok@" + d1.String()
	g.Expect(c.Message).To(ContainSubstring("running module sha256:" + sha256Hex(okWasm) + " from " + resolved))
	g.Eventually(h.events).WithArguments("oci").Should(ContainElement("Resolved: image " + image + " resolved to " + resolved))

	// The tag moves to another module; a restart of the same generation
	// runs what the tag resolved to the first time.
	registry.Push(t, "actors/ok", "v1", componenttest.Artifact(t, testdata(t, "initerr.wasm"), componenttest.WasmLayer))
	h.assign("oci", h.pod, 2)
	g.Eventually(h.actor).WithArguments("oci").WithTimeout(20 * time.Second).Should(
		And(HaveField("Epoch", int64(2)), HaveField("State", "Running")))
	g.Eventually(func() v1alpha1.Phase { return h.get("oci").Status.Phase }).Should(Equal(v1alpha1.PhaseRunning))
	g.Expect(h.ready("oci").Message).To(ContainSubstring(resolved))
	g.Expect(h.get("oci").Status.Restarts).To(BeZero(), "the host never writes restarts")

	// Without the pull secret the registry refuses, and the status says why.
	h.create("oci-noauth", v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{Image: image}})
	h.assign("oci-noauth", h.pod, 1)
	c = h.waitReason("oci-noauth", v1alpha1.ReasonComponentError, 20*time.Second)
	g.Expect(c.Message).To(ContainSubstring("refused access (check spec.component.imagePullSecrets)"))
	g.Expect(c.Message).NotTo(ContainSubstring(pass))
}

func (s *suite) testURLComponent(t *testing.T) {
	g := NewWithT(t)
	okWasm := testdata(t, "ok.wasm")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(okWasm)
	}))
	t.Cleanup(srv.Close)
	h := s.startHost(t, func(c *Config) { c.HTTPClient = srv.Client() })
	h.create("url", v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{URL: srv.URL + "/ok.wasm", SHA256: sha256Hex(okWasm)}})
	h.assign("url", h.pod, 1)
	c := h.waitReason("url", v1alpha1.ReasonRunning, 20*time.Second)
	g.Expect(c.Message).To(ContainSubstring("from " + srv.URL + "/ok.wasm"))
}

func (s *suite) testBadComponents(t *testing.T) {
	h := s.startHost(t)
	okWasm := testdata(t, "ok.wasm")
	tests := map[string]struct {
		component func() *v1alpha1.ComponentSource
		reason    string
		message   string
	}{
		"not-wasm": {component: func() *v1alpha1.ComponentSource {
			return h.wasmConfigMap("not-wasm", []byte("#!/bin/sh\necho I am not wasm\n"))
		}, reason: v1alpha1.ReasonComponentError, message: "is not a WebAssembly module"},
		"wrong-digest": {component: func() *v1alpha1.ComponentSource {
			c := h.wasmConfigMap("wrong-digest", okWasm)
			c.SHA256 = sha256Hex([]byte("something else"))
			return c
		}, reason: v1alpha1.ReasonComponentError, message: "spec.component.sha256 pins sha256:" + sha256Hex([]byte("something else"))},
		"broken-module": {component: func() *v1alpha1.ComponentSource {
			return h.wasmConfigMap("broken-module", []byte("\x00asm\x01\x00\x00\x00\xff\xff\xff"))
		}, reason: v1alpha1.ReasonComponentError, message: "not a valid WebAssembly module"},
		// The bomb: 45 s and 955 MB of compiling, before.
		"br-table-bomb": {component: func() *v1alpha1.ComponentSource {
			return h.wasmConfigMap("br-table-bomb", testutil.FuncModule(testutil.BrTable(400_000), 0))
		}, reason: v1alpha1.ReasonComponentError, message: "function 0's br_table has 400000 targets, more than the 16384 allowed"},
		// A WebAssembly component of a shape the engine does not run.
		"unsupported-component": {component: func() *v1alpha1.ComponentSource {
			return h.wasmConfigMap("unsupported-component", []byte("\x00asm\x0d\x00\x01\x00"))
		}, reason: v1alpha1.ReasonComponentError, message: "unsupported component shape: exports no function"},
		"init-error": {component: func() *v1alpha1.ComponentSource {
			return h.wasmConfigMap("init-error", testdata(t, "initerr.wasm"))
		}, reason: v1alpha1.ReasonInitFailed, message: "init: no database configured"},
		"wat-from-file": {component: func() *v1alpha1.ComponentSource {
			// What kubectl create configmap --from-file=hello.wat makes.
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "wat-from-file"},
				Data: map[string]string{"hello.wat": "(module (func (export \"hello\")))\n"}}
			if err := h.c.Create(h.ctx(), cm); err != nil {
				t.Fatal(err)
			}
			return &v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: "wat-from-file", Key: "hello.wat"}}
		}, reason: v1alpha1.ReasonComponentError, message: "key hello.wat of ConfigMap " + h.ns + "/wat-from-file holds WebAssembly text (WAT), not a binary module: compile it with wat2wasm"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			h.create(name, v1alpha1.ActorSpec{Component: *tc.component()})
			h.assign(name, h.pod, 1)
			c := h.waitReason(name, tc.reason, 20*time.Second)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring(tc.message))
			a := h.get(name)
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseFailed))
			g.Expect(a.Status.LastError).To(ContainSubstring(tc.message))
			// One Warning for the failure, reason Failed, the Ready
			// reason first in its note.
			g.Eventually(h.events).WithArguments(name).Should(ContainElement(And(
				HavePrefix(v1alpha1.EventFailed+": "+tc.reason+": "), ContainSubstring(tc.message))))
		})
	}
	g := NewWithT(t)
	g.Expect(h.metrics()).To(ContainSubstring(`troupe_host_actor_starts_total{result="ComponentError"} 6`))
	g.Expect(h.metrics()).To(ContainSubstring(`troupe_host_actor_starts_total{result="InitFailed"} 1`))
}

// testComponentSourceAppears: an Actor whose component ConfigMap does not
// exist yet, or lacks the key, waits for it (Ready=False
// ComponentSourceMissing, phase still Scheduled, no failure) and starts as
// soon as it appears; the lastError of an earlier failure is cleared once
// it runs.
func (s *suite) testComponentSourceAppears(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	okWasm := testdata(t, "ok.wasm")
	source := func(cm string) v1alpha1.ActorSpec {
		return v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{ConfigMap: &v1alpha1.ComponentConfigMap{Name: cm, Key: "actor.wasm"}}}
	}
	// "late": no ConfigMap yet, and a failure of an earlier epoch in status.
	h.create("late", source("late-wasm"))
	g.Eventually(func() error {
		a := h.get("late")
		a.Status.LastError = "Trapped: an earlier epoch's failure"
		return h.c.Status().Update(h.ctx(), a)
	}).Should(Succeed())
	h.assign("late", h.pod, 1)
	// "late-key": the ConfigMap exists, without the key.
	keyless := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "keyless-wasm"}, BinaryData: map[string][]byte{"other.wasm": okWasm}}
	g.Expect(h.c.Create(h.ctx(), keyless)).To(Succeed())
	h.create("late-key", source("keyless-wasm"))
	h.assign("late-key", h.pod, 1)

	c := h.waitReason("late", v1alpha1.ReasonComponentSourceMissing, 30*time.Second)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Message).To(Equal("waiting for the actor's component: reading key actor.wasm of ConfigMap " + h.ns + "/late-wasm: the ConfigMap does not exist"))
	c = h.waitReason("late-key", v1alpha1.ReasonComponentSourceMissing, 30*time.Second)
	g.Expect(c.Message).To(HaveSuffix("keyless-wasm: the ConfigMap has no such key"))
	for _, name := range []string{"late", "late-key"} {
		g.Expect(h.get(name).Status.Phase).To(Equal(v1alpha1.PhaseScheduled), "waiting is not a failure")
		g.Eventually(h.events).WithArguments(name).Should(ContainElement(
			HavePrefix(v1alpha1.ReasonComponentSourceMissing + ": waiting for the actor's component")))
	}

	// They appear: each actor runs within a couple of seconds (the
	// fallback re-check is 30 s away, so only the watch can make it).
	appear := map[string]func(){
		"late": func() {
			g.Expect(h.c.Create(h.ctx(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "late-wasm"},
				BinaryData: map[string][]byte{"actor.wasm": okWasm}})).To(Succeed())
		},
		"late-key": func() {
			keyless.BinaryData["actor.wasm"] = okWasm
			g.Expect(h.c.Update(h.ctx(), keyless)).To(Succeed())
		},
	}
	for _, name := range []string{"late", "late-key"} {
		appear[name]()
		appeared := time.Now()
		h.waitReason(name, v1alpha1.ReasonRunning, componentRecheck-5*time.Second)
		took := time.Since(appeared)
		t.Logf("%s: the component appeared; Ready=True %s later", name, took.Round(time.Millisecond))
		g.Expect(took).To(BeNumerically("<", 10*time.Second))
		g.Expect(h.get(name).Status.Phase).To(Equal(v1alpha1.PhaseRunning))
	}
	g.Expect(h.get("late").Status.LastError).To(BeEmpty(), "the actor runs: its last failure is over")
	g.Expect(h.metrics()).NotTo(ContainSubstring(`troupe_host_actor_starts_total{result="ComponentError"}`), "it never failed")
	g.Expect(h.host.envs.Stats().Watches).To(BeZero(), "the ConfigMaps' watches end with the wait")
}

// testJSComponentFromOCI: a JavaScript actor built by componentize-js, a
// 12 MB WebAssembly component (3.7 MB gzipped: over a ConfigMap's 1 MiB),
// delivered as an OCI artifact, runs on a host as it comes: its console.log
// reaches the host's log, its event and metric are recorded and exported.
func (s *suite) testJSComponentFromOCI(t *testing.T) {
	g := NewWithT(t)
	wasm := testutil.BuiltComponent(t, "js-hello")
	// The compilation cache the engine's component tests share: a cold
	// compile of the main module takes 10 to 60 s on two cores.
	cache := s.compiled
	if base, err := os.UserCacheDir(); err == nil {
		cache = filepath.Join(base, "troupe", "testutil-wazero")
	}
	h := s.startHost(t, func(c *Config) { c.CompilationCacheDir = cache })
	const user, pass = "robot", "registry-pass-456"
	registry := componenttest.StartRegistry(t, user, pass)
	digest := registry.Push(t, "actors/js-hello", "v1", componenttest.Artifact(t, wasm, componenttest.WasmLayer))
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	g.Expect(h.c.Create(h.ctx(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, registry.Host, auth))},
	})).To(Succeed())
	h.create("js", v1alpha1.ActorSpec{
		Component: v1alpha1.ComponentSource{Image: registry.Host + "/actors/js-hello:v1",
			ImagePullSecrets: []v1alpha1.LocalObjectReference{{Name: "regcred"}}},
		InitialState: `{"count":0}`,
		Env:          []v1alpha1.EnvVar{literal("GREETING", "Hola")},
	})
	h.assign("js", h.pod, 1)
	c := h.waitReason("js", v1alpha1.ReasonRunning, 3*time.Minute)
	g.Expect(c.Message).To(ContainSubstring("running module sha256:" + sha256Hex(wasm) + " from " + registry.Host + "/actors/js-hello@" + digest.String()))
	g.Expect(h.custom("js", "greeted")).To(HaveLen(1))
	g.Expect(h.logs.String()).To(ContainSubstring("Hola from js ("), "console.log reaches the host's log")
	g.Expect(metricValue(h.metrics(), "troupe_actor_js_hello_init_ms_recorded_count", "namespace="+h.ns, "actor=js")).To(Equal("1"))
}
