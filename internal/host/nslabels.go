package host

import (
	"context"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// namespaceLabels keeps every namespace's labels, from a metadata-only
// informer of the manager's cache, for the engine's cross-namespace policy
// (spec.acceptMessagesFrom.namespaceSelector): a sender's namespace is
// matched without an API request. Safe for concurrent use.
type namespaceLabels struct {
	mu     sync.RWMutex
	labels map[string]map[string]string
}

// watchNamespaceLabels registers the informer with c; it runs once the
// manager starts.
func watchNamespaceLabels(ctx context.Context, c cache.Cache) (*namespaceLabels, error) {
	n := &namespaceLabels{labels: map[string]map[string]string{}}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, fmt.Errorf("watching namespaces: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    n.set,
		UpdateFunc: func(_, o any) { n.set(o) },
		DeleteFunc: n.delete,
	}); err != nil {
		return nil, fmt.Errorf("watching namespaces: %w", err)
	}
	return n, nil
}

func (n *namespaceLabels) set(o any) {
	m, ok := o.(metav1.Object)
	if !ok {
		return
	}
	l := maps.Clone(m.GetLabels())
	if l == nil {
		l = map[string]string{}
	}
	n.mu.Lock()
	n.labels[m.GetName()] = l
	n.mu.Unlock()
}

func (n *namespaceLabels) delete(o any) {
	if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	if m, ok := o.(metav1.Object); ok {
		n.mu.Lock()
		delete(n.labels, m.GetName())
		n.mu.Unlock()
	}
}

// get is actorhost.EngineOptions.NamespaceLabels: the labels are the
// informer's copy, never written after set, so they are shared read-only.
func (n *namespaceLabels) get(ns string) (map[string]string, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	l, ok := n.labels[ns]
	return l, ok
}
