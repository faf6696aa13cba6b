package kubeenv

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// testWatchObject: a watch of an object that does not exist yet fires when
// it is created, shares the watch an Env holds on the same object, and is
// released by Close.
func testWatchObject(t *testing.T, setup setupFunc) {
	g := NewWithT(t)
	w, ns, cs := setup(t)
	key := ObjectKey{Kind: ConfigMap, Namespace: ns, Name: "component"}
	obj := w.WatchObject(key)
	env := w.Env(ns, &v1alpha1.ActorSpec{EnvFrom: []v1alpha1.EnvFromSource{{ConfigMapRef: &v1alpha1.ConfigMapEnvSource{Name: "component"}}}})
	g.Expect(w.Stats()).To(Equal(Stats{Watches: 1, Refs: 2}), "one watch for both")
	g.Expect(obj.WaitSynced(ctxT(t))).To(Succeed())
	// Nothing exists: no change after the first list.
	drain := func() {
		select {
		case <-obj.Changes():
		default:
		}
	}
	drain()
	createConfigMap(t, cs, ns, "component", map[string]string{"k": "v"})
	select {
	case <-obj.Changes():
	case <-time.After(30 * time.Second):
		t.Fatal("no change within 30s of the ConfigMap's creation")
	}
	obj.Close()
	g.Expect(w.Stats().Refs).To(Equal(1))
	env.Close()
	g.Expect(w.Stats().Watches).To(BeZero())
}
