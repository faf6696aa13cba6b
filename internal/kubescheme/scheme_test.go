package kubescheme

import (
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// TestNew: the scheme knows every kind the binaries read or write.
func TestNew(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range []runtime.Object{
		&v1alpha1.Actor{}, &v1alpha1.ActorList{}, &coordinationv1.Lease{}, &corev1.Node{},
		&corev1.ConfigMap{}, &corev1.Secret{}, &eventsv1.Event{},
	} {
		if _, _, err := s.ObjectKinds(obj); err != nil {
			t.Errorf("%T: %v", obj, err)
		}
	}
}
