package host

import (
	"context"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// The host's Lease is its heartbeat and its declaration to the manager:
// node, capacity and protocol version (PROTOCOL.md#host-leases).

// runLease keeps the host's Lease renewed every third of its duration
// until ctx ends. A failed renewal is retried sooner, every tenth. A
// change of its memory that the manager should know before then (a
// refused start, figures that moved by more than an actor's worth) renews
// it early, at most once a second.
func (h *Host) runLease(ctx context.Context) {
	period := h.cfg.LeaseDuration / 3
	for {
		next := period
		renewed := time.Now()
		if err := h.renewLease(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			h.log.Error(err, "renewing the host lease")
			next = h.cfg.LeaseDuration / 10
		}
		timer := time.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-h.mem.renew:
			timer.Stop()
			if wait := time.Second - time.Since(renewed); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
	}
}

func (h *Host) leaseKey() types.NamespacedName {
	return types.NamespacedName{Namespace: h.cfg.PodNamespace, Name: h.cfg.PodName}
}

// renewLease creates the Lease or renews it, with the resourceVersion it
// read: two processes claiming one pod name do not silently share it.
func (h *Host) renewLease(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.LeaseDuration/2)
	defer cancel()
	now := metav1.NewMicroTime(time.Now())
	var l coordinationv1.Lease
	err := h.client.Get(ctx, h.leaseKey(), &l)
	switch {
	case apierrors.IsNotFound(err):
		l = coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: h.cfg.PodNamespace, Name: h.cfg.PodName}}
		h.setLease(&l, now)
		l.Spec.AcquireTime = &now
		if err := h.client.Create(ctx, &l); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != h.cfg.PodName {
			l.Spec.AcquireTime = &now
		}
		h.setLease(&l, now)
		if err := h.client.Update(ctx, &l); err != nil {
			return err
		}
	}
	h.leaseRenewed.Store(now.UnixNano())
	return nil
}

func (h *Host) setLease(l *coordinationv1.Lease, now metav1.MicroTime) {
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[v1alpha1.HostLeaseLabel] = v1alpha1.HostLeaseLabelValue
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[v1alpha1.NodeAnnotation] = h.cfg.NodeName
	l.Annotations[v1alpha1.CapacityAnnotation] = strconv.Itoa(h.cfg.Capacity)
	// The manager places actors only on hosts whose version it knows
	// (PROTOCOL.md#versions).
	l.Annotations[v1alpha1.ProtocolVersionAnnotation] = strconv.Itoa(v1alpha1.ProtocolVersion)
	// The manager places on this host only Actors of these namespaces;
	// without the annotation, of every namespace.
	if len(h.cfg.ActorNamespaces) > 0 {
		l.Annotations[v1alpha1.NamespacesAnnotation] = v1alpha1.JoinNamespaces(h.cfg.ActorNamespaces)
	} else {
		delete(l.Annotations, v1alpha1.NamespacesAnnotation)
	}
	h.setLeaseMemory(l)
	if h.peer != nil {
		h.peer.setLease(l.Annotations)
	} else {
		delete(l.Annotations, v1alpha1.PeerEndpointAnnotation)
		delete(l.Annotations, v1alpha1.PeerProtocolAnnotation)
	}
	if h.cfg.PodUID != "" {
		l.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Pod", Name: h.cfg.PodName, UID: types.UID(h.cfg.PodUID),
		}}
	}
	l.Spec.HolderIdentity = ptr.To(h.cfg.PodName)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(h.cfg.LeaseDuration / time.Second))
	l.Spec.RenewTime = &now
}

// deleteLease removes the Lease on a clean shutdown: the controller moves
// the host's actors at once instead of after a lease duration.
func (h *Host) deleteLease(ctx context.Context) {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: h.cfg.PodNamespace, Name: h.cfg.PodName}}
	if err := h.client.Delete(ctx, l); err != nil && !apierrors.IsNotFound(err) {
		h.log.Error(err, "deleting the host lease")
		return
	}
	h.log.Info("deleted the host lease")
}

// leaseFresh reports whether the lease was renewed within its duration.
func (h *Host) leaseFresh() bool {
	last := h.leaseRenewed.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < h.cfg.LeaseDuration
}
