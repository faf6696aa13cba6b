package envtestutil

import (
	"context"
	"strconv"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// Node creates a ready Node named name with labels and exactly taints, for
// t: deleted at its cleanup. Nodes are cluster-scoped: suites sharing a
// control plane name theirs after their namespace.
func (e *Env) Node(t testing.TB, name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	t.Helper()
	ctx := context.Background()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
	if err := e.Client.Create(ctx, n); err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(context.Background(), n) })
	// The API server taints a new Node not-ready (TaintNodesByCondition)
	// until its kubelet reports; there is no kubelet here, so the node
	// becomes ready by hand, with just the taints asked for.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := e.Client.Get(ctx, client.ObjectKeyFromObject(n), n); err != nil {
			return err
		}
		n.Spec.Taints = taints
		return e.Client.Update(ctx, n)
	})
	if err != nil {
		t.Fatalf("making node %s ready: %v", name, err)
	}
	return n
}

// HostLease creates the Lease a host pod named name on node renews in
// namespace ns (see api/v1alpha1/protocol.go), just renewed, with capacity
// (0 for none declared) and duration. The test renews it, or not.
func (e *Env) HostLease(t testing.TB, ns, name, node string, capacity int, duration time.Duration) *coordinationv1.Lease {
	t.Helper()
	now := metav1.NewMicroTime(time.Now())
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels:      map[string]string{v1alpha1.HostLeaseLabel: v1alpha1.HostLeaseLabelValue},
			Annotations: map[string]string{v1alpha1.NodeAnnotation: node},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(name),
			LeaseDurationSeconds: ptr.To(int32(duration / time.Second)),
			AcquireTime:          &now,
			RenewTime:            &now,
		},
	}
	if capacity > 0 {
		l.Annotations[v1alpha1.CapacityAnnotation] = strconv.Itoa(capacity)
	}
	if err := e.Client.Create(context.Background(), l); err != nil {
		t.Fatalf("creating lease %s/%s: %v", ns, name, err)
	}
	return l
}
