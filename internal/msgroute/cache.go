package msgroute

import (
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// NewCache makes the informers a Router reads: every Actor of namespaces
// (all when empty) and the host Leases of leaseNamespace, each stripped to
// what routing needs, so that a host's memory grows little with the
// cluster's Actors. Start it (it is a manager.Runnable) before routing.
func NewCache(cfg *rest.Config, scheme *runtime.Scheme, namespaces []string, leaseNamespace string) (cache.Cache, error) {
	actors := cache.ByObject{Transform: stripActor, UnsafeDisableDeepCopy: ptrTrue()}
	if len(namespaces) > 0 {
		actors.Namespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			actors.Namespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(cfg, cache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.Actor{}: actors,
			&coordinationv1.Lease{}: {
				Namespaces: map[string]cache.Config{leaseNamespace: {}},
				Label:      labels.SelectorFromSet(labels.Set{v1alpha1.HostLeaseLabel: v1alpha1.HostLeaseLabelValue}),
				Transform:  stripLease, UnsafeDisableDeepCopy: ptrTrue(),
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the routing cache: %w", err)
	}
	return c, nil
}

func ptrTrue() *bool { t := true; return &t }

// stripActor keeps of an Actor its identity, spec.suspend and the status
// fields of its assignment.
func stripActor(o any) (any, error) {
	a, ok := o.(*v1alpha1.Actor)
	if !ok {
		return o, nil
	}
	return &v1alpha1.Actor{
		TypeMeta: a.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Namespace: a.Namespace, Name: a.Name, UID: a.UID,
			ResourceVersion: a.ResourceVersion, Generation: a.Generation, DeletionTimestamp: a.DeletionTimestamp},
		Spec: v1alpha1.ActorSpec{Suspend: a.Spec.Suspend},
		Status: v1alpha1.ActorStatus{ActorID: a.Status.ActorID, Phase: a.Status.Phase,
			HostPod: a.Status.HostPod, Epoch: a.Status.Epoch},
	}, nil
}

// stripLease keeps of a host Lease its peer annotations and its renewal.
func stripLease(o any) (any, error) {
	l, ok := o.(*coordinationv1.Lease)
	if !ok {
		return o, nil
	}
	ann := map[string]string{}
	for _, k := range []string{v1alpha1.PeerEndpointAnnotation, v1alpha1.PeerProtocolAnnotation} {
		if v, ok := l.Annotations[k]; ok {
			ann[k] = v
		}
	}
	return &coordinationv1.Lease{
		TypeMeta: l.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Namespace: l.Namespace, Name: l.Name, UID: l.UID,
			ResourceVersion: l.ResourceVersion, Labels: l.Labels, Annotations: ann},
		Spec: coordinationv1.LeaseSpec{RenewTime: l.Spec.RenewTime, LeaseDurationSeconds: l.Spec.LeaseDurationSeconds,
			HolderIdentity: l.Spec.HolderIdentity},
	}, nil
}
