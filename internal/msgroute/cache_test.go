package msgroute

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// TestStrip: the informers keep of an Actor its assignment only, of a
// Lease its peer annotations and renewal.
func TestStrip(t *testing.T) {
	a := &v1alpha1.Actor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", Annotations: map[string]string{"big": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec: v1alpha1.ActorSpec{Suspend: true, Env: []v1alpha1.EnvVar{{Name: "K", Value: ptr.To("v")}}},
		Status: v1alpha1.ActorStatus{ActorID: "id", HostPod: "h", Epoch: 3, Phase: v1alpha1.PhaseRunning, LastError: "long"},
	}
	o, err := stripActor(a)
	if err != nil {
		t.Fatal(err)
	}
	s := o.(*v1alpha1.Actor)
	if s.Annotations != nil || s.ManagedFields != nil || s.Spec.Env != nil || s.Status.LastError != "" {
		t.Errorf("kept too much: %+v", s)
	}
	if !s.Spec.Suspend || s.Status.ActorID != "id" || s.Status.HostPod != "h" || s.Status.Epoch != 3 || s.Status.Phase != v1alpha1.PhaseRunning || s.Name != "a" {
		t.Errorf("lost the assignment: %+v", s)
	}
	now := metav1.NewMicroTime(time.Unix(1000, 0))
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "h", Annotations: map[string]string{
			v1alpha1.PeerEndpointAnnotation: "https://10.0.0.1:9443", v1alpha1.PeerProtocolAnnotation: "1", v1alpha1.MemoryUsedAnnotation: "5"}},
		Spec: coordinationv1.LeaseSpec{RenewTime: &now, LeaseDurationSeconds: ptr.To(int32(15))},
	}
	o, _ = stripLease(l)
	sl := o.(*coordinationv1.Lease)
	if len(sl.Annotations) != 2 || sl.Annotations[v1alpha1.PeerEndpointAnnotation] == "" || sl.Spec.RenewTime == nil {
		t.Errorf("stripped Lease %+v", sl)
	}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{{time.Unix(1010, 0), false}, {time.Unix(1016, 0), true}} {
		if got := expired(sl, tc.at); got != tc.want {
			t.Errorf("expired at %v = %v", tc.at, got)
		}
	}
	if expired(&coordinationv1.Lease{}, time.Now()) {
		t.Error("a Lease without renewal is judged expired")
	}
}
