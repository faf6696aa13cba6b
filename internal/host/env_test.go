package host

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// probeSpec runs the probe test actor with env.
func (h *harness) probeSpec(env ...v1alpha1.EnvVar) v1alpha1.ActorSpec {
	return v1alpha1.ActorSpec{Component: *h.s.urlSource(testutil.BuildActor(h.t, "internal/host/testdata/probe")), Env: env}
}

func literal(name, value string) v1alpha1.EnvVar {
	return v1alpha1.EnvVar{Name: name, Value: ptr.To(value)}
}

func fromSecret(name, secret, key string) v1alpha1.EnvVar {
	return v1alpha1.EnvVar{Name: name, ValueFrom: &v1alpha1.EnvVarSource{SecretKeyRef: &v1alpha1.SecretKeySelector{Name: secret, Key: key}}}
}

// metricValue finds the sample of family name whose labels include all of
// labels ("k=v"), as text.
func metricValue(exposition, name string, labels ...string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			all = all && strings.Contains(line, k+`="`+v+`"`)
		}
		if all {
			return line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	return ""
}

// testFeatureFlags: the feature-flags example, a ticking actor, takes the
// new UI path once the ConfigMap behind its envFrom says so, while it runs:
// no restart.
func (s *suite) testFeatureFlags(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	g.Expect(h.c.Create(h.ctx(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "feature-flags"},
		Data: map[string]string{"NEW_UI": "false"}})).To(Succeed())
	h.create("feature-flags", v1alpha1.ActorSpec{
		Component: *s.urlSource(testutil.BuildExample(t, "feature-flags")),
		EnvFrom: []v1alpha1.EnvFromSource{{Prefix: "FEATURE_",
			ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "feature-flags", Optional: ptr.To(true)}}},
		TickInterval: &metav1.Duration{Duration: 200 * time.Millisecond},
	})
	h.assign("feature-flags", h.pod, 1)
	h.waitReason("feature-flags", v1alpha1.ReasonRunning, 60*time.Second)
	paths := func() []string {
		var out []string
		for _, e := range h.custom("feature-flags", "feature_path") {
			out = append(out, fmt.Sprintf("%v/%v", e["path"], e["trigger"]))
		}
		return out
	}
	g.Expect(paths()).To(Equal([]string{"old-ui/init"}))

	var cm corev1.ConfigMap
	g.Expect(h.c.Get(h.ctx(), h.key("feature-flags"), &cm)).To(Succeed())
	cm.Data["NEW_UI"] = "true"
	edited := time.Now()
	g.Expect(h.c.Update(h.ctx(), &cm)).To(Succeed())
	g.Eventually(paths).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal([]string{"old-ui/init", "new-ui/tick"}))
	t.Logf("ConfigMap edit to the actor taking the new path: %s (tick interval 200ms)", time.Since(edited).Round(time.Millisecond))
	// The status head follows the chain: it reaches the events recorded so
	// far, and names the event at its length. (The actor ticks every 200ms,
	// faster than the status is published, so the status head is rarely
	// the chain's very last event: comparing with the last one only passes
	// when a poll lands between a publish and the next tick.)
	events, err := h.chain("feature-flags")
	g.Expect(err).NotTo(HaveOccurred())
	seen := int64(len(events))
	g.Eventually(func() string {
		st := h.get("feature-flags").Status.Chain
		events, err := h.chain("feature-flags")
		switch {
		case err != nil || st == nil:
			return "no chain"
		case st.Length < seen:
			return fmt.Sprintf("status length %d, behind the %d events the chain had", st.Length, seen)
		case st.Length > int64(len(events)):
			return fmt.Sprintf("status length %d, past the chain's %d events", st.Length, len(events))
		case st.Head != events[st.Length-1].Hash.String():
			return fmt.Sprintf("status head %s is not event %d's", st.Head, st.Length-1)
		}
		return "in step"
	}).WithTimeout(20 * time.Second).Should(Equal("in step"))

	// One run: the edit did not restart the actor.
	events, err = h.chain("feature-flags")
	g.Expect(err).NotTo(HaveOccurred())
	starts := 0
	for _, e := range events {
		if e.Kind == chain.KindActorStart || e.Kind == chain.KindRestart {
			starts++
		}
	}
	g.Expect(starts).To(Equal(1))
	g.Expect(h.get("feature-flags").Status.Phase).To(Equal(v1alpha1.PhaseRunning))
}

func (s *suite) testSecretNeverLeaks(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	secret := "s3cr3t-" + rand.String(16)
	g.Expect(h.c.Create(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "db"},
		StringData: map[string]string{"password": secret}})).To(Succeed())

	h.create("probe", h.probeSpec(literal("PROBE_VARS", "DB_PASSWORD,GREETING"),
		fromSecret("DB_PASSWORD", "db", "password"), literal("GREETING", "hi")))
	h.assign("probe", h.pod, 1)
	h.waitReason("probe", v1alpha1.ReasonRunning, 60*time.Second)
	// The actor got the value (it records only its digest) ...
	env := h.custom("probe", "env")
	g.Expect(env).To(ContainElement(And(HaveKeyWithValue("name", "DB_PASSWORD"), HaveKeyWithValue("set", true),
		HaveKeyWithValue("sha256", sha256Hex([]byte(secret))))))
	g.Expect(env).To(ContainElement(And(HaveKeyWithValue("name", "GREETING"), HaveKeyWithValue("sha256", sha256Hex([]byte("hi"))))))
	// ... and its chain records that get-env read a redacted value.
	chainBytes, err := os.ReadFile(h.chainFile("probe"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(chainBytes)).NotTo(ContainSubstring(secret))
	g.Expect(string(chainBytes)).To(ContainSubstring(`"name":"DB_PASSWORD","found":true,"value":{"redacted":true}`))

	// Careless actors: one logs the value, one puts it in its init error.
	// The host's log, the status and the Events still never show it (the
	// chain of those two is the runtime handler's: see docs/host.md).
	h.create("probe-log", h.probeSpec(literal("LOG_VAR", "DB_PASSWORD"), fromSecret("DB_PASSWORD", "db", "password")))
	h.assign("probe-log", h.pod, 1)
	h.create("probe-fail", h.probeSpec(literal("FAIL_WITH", "DB_PASSWORD"), fromSecret("DB_PASSWORD", "db", "password")))
	h.assign("probe-fail", h.pod, 1)
	h.waitReason("probe-log", v1alpha1.ReasonRunning, 60*time.Second)
	c := h.waitReason("probe-fail", v1alpha1.ReasonInitFailed, 60*time.Second)
	g.Expect(c.Message).To(Equal("init: cannot connect with password [redacted]"))
	g.Eventually(h.logs.String).Should(ContainSubstring("the value is [redacted]"))

	for _, name := range []string{"probe", "probe-log", "probe-fail"} {
		status, err := json.Marshal(h.get(name).Status)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(status)).NotTo(ContainSubstring(secret), name+" status")
		g.Expect(strings.Join(h.events(name), "\n")).NotTo(ContainSubstring(secret), name+" events")
	}
	g.Expect(h.logs.String()).NotTo(ContainSubstring(secret))
	g.Expect(h.logs.String()).To(ContainSubstring("probe-log"), "the host logged the actors' lines at all")
}

func (s *suite) testMissingEnvSource(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.create("needs-secret", h.probeSpec(literal("PROBE_VARS", "TOKEN"), fromSecret("TOKEN", "late", "token")))
	h.assign("needs-secret", h.pod, 1)
	c := h.waitReason("needs-secret", v1alpha1.ReasonEnvSourceMissing, 30*time.Second)
	g.Expect(c.Message).To(Equal("waiting for the actor's env sources: Secret " + h.ns + "/late, referenced by spec.env[1] (TOKEN), does not exist"))
	g.Expect(h.get("needs-secret").Status.Phase).To(Equal(v1alpha1.PhaseScheduled), "waiting is not a failure")
	g.Eventually(h.events).WithArguments("needs-secret").Should(ContainElement(ContainSubstring("EnvSourceMissing: waiting for")))

	// The Secret appears: the actor starts, no restart needed.
	g.Expect(h.c.Create(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "late"},
		StringData: map[string]string{"token": "tok"}})).To(Succeed())
	h.waitReason("needs-secret", v1alpha1.ReasonRunning, 60*time.Second)
	g.Expect(h.custom("needs-secret", "env")).To(ContainElement(HaveKeyWithValue("sha256", sha256Hex([]byte("tok")))))
}

func (s *suite) testSystemInfoAndMetrics(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	h.run("sysinfo", h.probeSpec(), 60*time.Second)
	g.Expect(h.custom("sysinfo", "sysinfo")).To(ConsistOf(HaveKeyWithValue("hostname", h.node)))
	m := h.metrics()
	g.Expect(metricValue(m, "troupe_actor_probe_runs", "namespace="+h.ns, "actor=sysinfo")).To(Equal("1"))
	g.Expect(metricValue(m, "troupe_actor_probe_runs_recorded_count", "namespace="+h.ns, "actor=sysinfo")).To(Equal("1"))
	g.Eventually(func() string {
		return metricValue(h.metrics(), "troupe_host_status_writes_total", "result=ok")
	}).ShouldNot(BeEmpty())
	g.Expect(h.metrics()).To(MatchRegexp(`troupe_host_chain_appends_total [1-9]`))
	g.Expect(metricValue(h.metrics(), "troupe_host_actors", "state=running")).To(Equal("1"))
	g.Expect(metricValue(h.metrics(), "troupe_host_actors", "state=starting")).To(Equal("0"))

	// Everything the host exports, its own families and its actors', passes
	// Prometheus' linter (names, units, counter suffixes, help).
	problems, err := promlint.New(strings.NewReader(h.metrics())).Lint()
	g.Expect(err).NotTo(HaveOccurred())
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
