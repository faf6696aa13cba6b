package kubeenv

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// TestKubeEnv runs against a real API server; the subtests share it, each
// in a namespace of its own.
func TestKubeEnv(t *testing.T) {
	env := envtestutil.Start(t)
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	setup := func(t *testing.T) (*Watcher, string, kubernetes.Interface) {
		w := NewWatcher(cs, logr.Discard())
		t.Cleanup(w.Close)
		return w, env.Namespace(t), cs
	}
	t.Run("Resolve", func(t *testing.T) { testResolve(t, setup) })
	t.Run("FollowsChanges", func(t *testing.T) { testFollowsChanges(t, setup) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, setup) })
	t.Run("WatchesOnlyReferenced", func(t *testing.T) { testWatchesOnlyReferenced(t, setup) })
	t.Run("WatchObject", func(t *testing.T) { testWatchObject(t, setup) })
}

type setupFunc func(t *testing.T) (*Watcher, string, kubernetes.Interface)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createConfigMap(t *testing.T, cs kubernetes.Interface, ns, name string, data map[string]string) {
	t.Helper()
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func createSecret(t *testing.T, cs kubernetes.Interface, ns, name string, data map[string]string, annotations map[string]string) {
	t.Helper()
	_, err := cs.CoreV1().Secrets(ns).Create(ctxT(t), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, StringData: data}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func cmKey(name, key string, optional bool) *v1alpha1.EnvVarSource {
	return &v1alpha1.EnvVarSource{ConfigMapKeyRef: &v1alpha1.ConfigMapKeySelector{Name: name, Key: key, Optional: ptr.To(optional)}}
}

func secretKey(name, key string, optional bool) *v1alpha1.EnvVarSource {
	return &v1alpha1.EnvVarSource{SecretKeyRef: &v1alpha1.SecretKeySelector{Name: name, Key: key, Optional: ptr.To(optional)}}
}

func testResolve(t *testing.T, setup setupFunc) {
	w, ns, cs := setup(t)
	createConfigMap(t, cs, ns, "flags", map[string]string{"NEW_UI": "true", "COLOR": "blue", "SHARED": "from-flags"})
	createConfigMap(t, cs, ns, "more", map[string]string{"SHARED": "from-more"})
	createSecret(t, cs, ns, "db", map[string]string{"password": "hunter2", "user": "app"}, nil)
	spec := &v1alpha1.ActorSpec{
		Env: []v1alpha1.EnvVar{
			{Name: "GREETING", Value: ptr.To("hi")},
			{Name: "EMPTY", Value: ptr.To("")},
			{Name: "DB_PASSWORD", ValueFrom: secretKey("db", "password", false)},
			{Name: "MODE", ValueFrom: cmKey("flags", "COLOR", false)},
			{Name: "FEATURE_COLOR", Value: ptr.To("env-wins")},
			{Name: "ABSENT", ValueFrom: cmKey("nope", "x", true)},
		},
		EnvFrom: []v1alpha1.EnvFromSource{
			{Prefix: "FEATURE_", ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "flags"}},
			{Prefix: "FEATURE_", ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "more"}},
			{Prefix: "DB_", SecretRef: &v1alpha1.SecretEnvSource{Name: "db"}},
		},
	}
	e := w.Env(ns, spec)
	t.Cleanup(e.Close)
	if err := e.WaitSynced(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	os.Setenv("TROUPE_HOST_ONLY", "leak")
	t.Cleanup(func() { os.Unsetenv("TROUPE_HOST_ONLY") })
	tests := map[string]struct {
		value  string
		found  bool
		secret bool
	}{
		"GREETING":         {value: "hi", found: true},
		"EMPTY":            {value: "", found: true},
		"DB_PASSWORD":      {value: "hunter2", found: true, secret: true},
		"DB_user":          {value: "app", found: true, secret: true},
		"MODE":             {value: "blue", found: true},
		"FEATURE_NEW_UI":   {value: "true", found: true},
		"FEATURE_COLOR":    {value: "env-wins", found: true},
		"FEATURE_SHARED":   {value: "from-more", found: true},
		"ABSENT":           {},
		"FEATURE_":         {},
		"NEW_UI":           {},
		"PATH":             {},
		"TROUPE_HOST_ONLY": {},
		"":                 {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, ok := e.LookupEnv(name)
			if ok != tc.found || v != (runtimehandler.EnvValue{Value: tc.value, Secret: tc.secret}) {
				t.Fatalf("LookupEnv(%q) = %+v, %v; want %q (secret %v), %v", name, v, ok, tc.value, tc.secret, tc.found)
			}
		})
	}
	if m := e.Missing(); len(m) != 0 {
		t.Fatalf("Missing() = %q, want none", m)
	}
	for in, want := range map[string]string{
		"init failed: password hunter2 refused": "init failed: password " + Redacted + " refused",
		"user app":                              "user app", // shorter than MinRedactBytes
		"blue is a ConfigMap value":             "blue is a ConfigMap value",
		"":                                      "",
	} {
		if got := e.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	want := []string{"DB_PASSWORD", "DB_password", "DB_user", "EMPTY", "FEATURE_COLOR", "FEATURE_NEW_UI", "FEATURE_SHARED", "GREETING", "MODE"}
	if got := e.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
}

func testFollowsChanges(t *testing.T, setup setupFunc) {
	g := NewWithT(t)
	w, ns, cs := setup(t)
	createConfigMap(t, cs, ns, "flags", map[string]string{"NEW_UI": "false"})
	e := w.Env(ns, &v1alpha1.ActorSpec{EnvFrom: []v1alpha1.EnvFromSource{
		{Prefix: "FEATURE_", ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "flags", Optional: ptr.To(true)}}}})
	t.Cleanup(e.Close)
	g.Expect(e.WaitSynced(ctxT(t))).To(Succeed())
	lookup := func() string {
		v, ok := e.LookupEnv("FEATURE_NEW_UI")
		if !ok {
			return "<unset>"
		}
		return v.Value
	}
	g.Expect(lookup()).To(Equal("false"))
	drain(e)

	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctxT(t), "flags", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	cm.Data["NEW_UI"] = "true"
	begin := time.Now()
	_, err = cs.CoreV1().ConfigMaps(ns).Update(ctxT(t), cm, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(e.Changes()).WithTimeout(10 * time.Second).Should(Receive())
	g.Expect(lookup()).To(Equal("true"))
	t.Logf("a ConfigMap edit reached the env in %s", time.Since(begin).Round(time.Millisecond))

	g.Expect(cs.CoreV1().ConfigMaps(ns).Delete(ctxT(t), "flags", metav1.DeleteOptions{})).To(Succeed())
	g.Eventually(lookup).WithTimeout(10 * time.Second).Should(Equal("<unset>"))
	createConfigMap(t, cs, ns, "flags", map[string]string{"NEW_UI": "yes"})
	g.Eventually(lookup).WithTimeout(10 * time.Second).Should(Equal("yes"))
}

func drain(e *Env) {
	for {
		select {
		case <-e.Changes():
		default:
			return
		}
	}
}

func testMissing(t *testing.T, setup setupFunc) {
	g := NewWithT(t)
	w, ns, cs := setup(t)
	createConfigMap(t, cs, ns, "present", map[string]string{"a": "1"})
	e := w.Env(ns, &v1alpha1.ActorSpec{
		Env: []v1alpha1.EnvVar{
			{Name: "DB_PASSWORD", ValueFrom: secretKey("db", "password", false)},
			{Name: "OPTIONAL", ValueFrom: secretKey("other", "x", true)},
			{Name: "NOKEY", ValueFrom: cmKey("present", "b", false)},
		},
		EnvFrom: []v1alpha1.EnvFromSource{
			{SecretRef: &v1alpha1.SecretEnvSource{Name: "creds"}},
			{ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "maybe", Optional: ptr.To(true)}},
		},
	})
	t.Cleanup(e.Close)
	g.Expect(e.WaitSynced(ctxT(t))).To(Succeed())
	g.Expect(e.Missing()).To(ConsistOf(
		"Secret "+ns+"/db, referenced by spec.env[0] (DB_PASSWORD), does not exist",
		"ConfigMap "+ns+`/present has no key "b", referenced by spec.env[2] (NOKEY)`,
		"Secret "+ns+"/creds, referenced by spec.envFrom[0], does not exist",
	))
	drain(e)
	createSecret(t, cs, ns, "db", map[string]string{"password": "pw"}, nil)
	createSecret(t, cs, ns, "creds", map[string]string{"token": "t"}, nil)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctxT(t), "present", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	cm.Data["b"] = "2"
	_, err = cs.CoreV1().ConfigMaps(ns).Update(ctxT(t), cm, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(e.Missing).WithTimeout(10 * time.Second).Should(BeEmpty())
	g.Expect(e.Changes()).To(Receive())
	for _, m := range e.Missing() {
		g.Expect(m).NotTo(ContainSubstring("pw"))
	}
}

func testWatchesOnlyReferenced(t *testing.T, setup setupFunc) {
	g := NewWithT(t)
	w, ns, cs := setup(t)
	// Many objects the actors do not reference: none of them may be watched
	// or held.
	for i := range 40 {
		createConfigMap(t, cs, ns, fmt.Sprintf("unrelated-%d", i), map[string]string{"k": strings.Repeat("x", 1024)})
		createSecret(t, cs, ns, fmt.Sprintf("unrelated-%d", i), map[string]string{"k": "v"}, nil)
	}
	createConfigMap(t, cs, ns, "flags", map[string]string{"A": "1"})
	createSecret(t, cs, ns, "db", map[string]string{"password": "pw"},
		map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"stringData":{"password":"pw"}}`})

	specA := &v1alpha1.ActorSpec{
		Env:     []v1alpha1.EnvVar{{Name: "P", ValueFrom: secretKey("db", "password", false)}},
		EnvFrom: []v1alpha1.EnvFromSource{{ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "flags"}}},
	}
	specB := &v1alpha1.ActorSpec{
		EnvFrom: []v1alpha1.EnvFromSource{
			{ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "flags"}},
			{Prefix: "X_", ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "flags"}},
			{ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "absent", Optional: ptr.To(true)}},
		},
	}
	a, b := w.Env(ns, specA), w.Env(ns, specB)
	g.Expect(a.WaitSynced(ctxT(t))).To(Succeed())
	g.Expect(b.WaitSynced(ctxT(t))).To(Succeed())
	// flags is shared (one watch, two references); absent is watched but
	// holds nothing.
	g.Expect(w.Stats()).To(Equal(Stats{Watches: 3, Cached: 2, Refs: 4}))

	// The stored Secret carries no annotations: kubectl's last-applied
	// copy of its values is not kept in memory.
	w.mu.Lock()
	stored := w.objs[ObjectKey{Kind: Secret, Namespace: ns, Name: "db"}].object().(*corev1.Secret)
	w.mu.Unlock()
	g.Expect(stored.Annotations).To(BeEmpty())
	g.Expect(stored.ManagedFields).To(BeEmpty())

	a.Close()
	a.Close()
	g.Expect(w.Stats()).To(Equal(Stats{Watches: 2, Cached: 1, Refs: 2}))
	v, ok := b.LookupEnv("X_A")
	g.Expect(ok).To(BeTrue())
	g.Expect(v.Value).To(Equal("1"))
	b.Close()
	g.Expect(w.Stats()).To(Equal(Stats{}))
}
