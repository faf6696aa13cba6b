package kubeenv

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// BenchmarkLookupEnv measures get-env's lookup against watched objects: a
// Secret key, and a prefixed envFrom key behind two other sources.
func BenchmarkLookupEnv(b *testing.B) {
	cs := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "flags"}, Data: map[string]string{"NEW_UI": "true"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other"}, Data: map[string]string{"X": "1"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "db"}, Data: map[string][]byte{"password": []byte("pw")}},
	)
	w := NewWatcher(cs, logr.Discard())
	defer w.Close()
	e := w.Env("ns", &v1alpha1.ActorSpec{
		Env: []v1alpha1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: secretKey("db", "password", false)}},
		EnvFrom: []v1alpha1.EnvFromSource{
			{Prefix: "FEATURE_", ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "flags"}},
			{Prefix: "OTHER_", ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "other", Optional: ptr.To(true)}},
			{Prefix: "MISSING_", ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "missing", Optional: ptr.To(true)}},
		},
	})
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.WaitSynced(ctx); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"DB_PASSWORD", "FEATURE_NEW_UI"} {
		if _, ok := e.LookupEnv(name); !ok {
			b.Fatalf("%s is unset", name)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.LookupEnv(name)
			}
		})
	}
}
