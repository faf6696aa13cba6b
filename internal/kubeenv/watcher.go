package kubeenv

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Kind is the kind of a referenced object.
type Kind string

// Kinds an actor's env can reference.
const (
	ConfigMap Kind = "ConfigMap"
	Secret    Kind = "Secret"
)

// ObjectKey names one referenced object.
type ObjectKey struct {
	Kind      Kind
	Namespace string
	Name      string
}

func (k ObjectKey) String() string { return fmt.Sprintf("%s %s/%s", k.Kind, k.Namespace, k.Name) }

// Watcher keeps one watch (a list and watch restricted by the field
// selector metadata.name) per ConfigMap or Secret that some Env references,
// shared by every Env that references it and stopped when the last one is
// closed. It is safe for concurrent use.
type Watcher struct {
	client kubernetes.Interface
	log    logr.Logger

	mu   sync.Mutex
	objs map[ObjectKey]*watched
	// seen remembers the values of every Secret an Env referenced in
	// this process, past the end of its watch; unwatchedKeys orders the
	// Secrets no Env references now, to bound how many are kept.
	seen          map[ObjectKey]*secretHistory
	unwatchedKeys []ObjectKey
	wg            sync.WaitGroup
}

// watched is one object's watch.
type watched struct {
	key    ObjectKey
	skey   string // the store's key, namespace/name
	refs   int    // guarded by Watcher.mu
	store  cache.Store
	ctrl   cache.Controller
	cancel context.CancelFunc
	// history is what this process saw of a Secret; nil for a ConfigMap.
	history *secretHistory

	mu   sync.Mutex
	subs map[*Env]struct{}
}

// NewWatcher returns a Watcher reading through client.
func NewWatcher(client kubernetes.Interface, log logr.Logger) *Watcher {
	return &Watcher{client: client, log: log, objs: map[ObjectKey]*watched{}, seen: map[ObjectKey]*secretHistory{}}
}

// Stats describes what a Watcher holds.
type Stats struct {
	// Watches is the number of objects watched (one watch each).
	Watches int
	// Cached is the number of objects held in memory: at most Watches.
	Cached int
	// Refs is the sum over watches of the Envs sharing each.
	Refs int
}

// Stats returns what the Watcher holds now.
func (w *Watcher) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s Stats
	for _, o := range w.objs {
		s.Watches++
		s.Cached += len(o.store.ListKeys())
		s.Refs += o.refs
	}
	return s
}

// Close stops every watch; Envs still open read nothing afterwards.
func (w *Watcher) Close() {
	w.mu.Lock()
	for k, o := range w.objs {
		o.cancel()
		delete(w.objs, k)
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// acquire returns the watch of key, starting it if it is the first
// reference, and subscribes e to its changes.
func (w *Watcher) acquire(key ObjectKey, e *Env) *watched {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.objs[key]
	if o == nil {
		o = w.start(key)
		w.objs[key] = o
	}
	o.refs++
	o.mu.Lock()
	o.subs[e] = struct{}{}
	o.mu.Unlock()
	return o
}

// release drops e's reference to o, stopping the watch with the last one.
func (w *Watcher) release(o *watched, e *Env) {
	o.mu.Lock()
	delete(o.subs, e)
	o.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	o.refs--
	if o.refs == 0 && w.objs[o.key] == o {
		delete(w.objs, o.key)
		o.cancel()
		if o.history != nil {
			w.unwatched(o.key)
		}
	}
}

// start begins watching one object; called with w.mu held.
func (w *Watcher) start(key ObjectKey) *watched {
	ctx, cancel := context.WithCancel(context.Background())
	o := &watched{key: key, skey: key.Namespace + "/" + key.Name, cancel: cancel, subs: map[*Env]struct{}{}}
	selector := fields.OneTermEqualSelector("metadata.name", key.Name).String()
	var lw *cache.ListWatch
	var example runtime.Object
	core := w.client.CoreV1()
	switch key.Kind {
	case Secret:
		example = &corev1.Secret{}
		o.history = w.history(key)
		lw = &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				opts.FieldSelector = selector
				return core.Secrets(key.Namespace).List(ctx, opts)
			},
			WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
				opts.FieldSelector = selector
				return core.Secrets(key.Namespace).Watch(ctx, opts)
			},
		}
	default:
		example = &corev1.ConfigMap{}
		lw = &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				opts.FieldSelector = selector
				return core.ConfigMaps(key.Namespace).List(ctx, opts)
			},
			WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
				opts.FieldSelector = selector
				return core.ConfigMaps(key.Namespace).Watch(ctx, opts)
			},
		}
	}
	notify := func(obj any) {
		if sec, ok := obj.(*corev1.Secret); ok && o.history != nil {
			o.history.record(sec.Data)
		}
		o.notify()
	}
	logger := w.log.WithValues("watch", key.String())
	o.store, o.ctrl = cache.NewInformerWithOptions(cache.InformerOptions{
		Logger: &logger,
		// A fake clientset (benchmarks) cannot stream lists; the API
		// server can.
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(lw, w.client),
		ObjectType:    example,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    notify,
			UpdateFunc: func(_, obj any) { notify(obj) },
			DeleteFunc: func(any) { o.notify() },
		},
		Transform: strip,
	})
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		o.ctrl.RunWithContext(ctx)
	}()
	return o
}

// strip drops what the host never reads before an object is stored: managed
// fields and annotations (kubectl's last-applied-configuration annotation
// of a Secret holds its values in clear).
func strip(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		m.SetAnnotations(nil)
	}
	return obj, nil
}

func (o *watched) notify() {
	o.mu.Lock()
	subs := make([]*Env, 0, len(o.subs))
	for e := range o.subs {
		subs = append(subs, e)
	}
	o.mu.Unlock()
	for _, e := range subs {
		e.changed()
	}
}

// object returns the watched object, or nil when it does not exist.
func (o *watched) object() runtime.Object {
	obj, ok, err := o.store.GetByKey(o.skey)
	if err != nil || !ok {
		return nil
	}
	r, _ := obj.(runtime.Object)
	return r
}

// synced reports whether the first list finished.
func (o *watched) synced() bool { return o.ctrl.HasSynced() }

// lookup returns the value of key in the object, whether the object exists
// and whether the key does.
func (o *watched) lookup(key string) (value string, exists, found bool) {
	switch obj := o.object().(type) {
	case *corev1.ConfigMap:
		v, ok := obj.Data[key]
		return v, true, ok
	case *corev1.Secret:
		v, ok := obj.Data[key]
		return string(v), true, ok
	}
	return "", false, false
}

// keys returns the object's keys, sorted, and whether it exists.
func (o *watched) keys() ([]string, bool) {
	var keys []string
	switch obj := o.object().(type) {
	case *corev1.ConfigMap:
		for k := range obj.Data {
			keys = append(keys, k)
		}
	case *corev1.Secret:
		for k := range obj.Data {
			keys = append(keys, k)
		}
	default:
		return nil, false
	}
	sort.Strings(keys)
	return keys, true
}

// whyUnsynced asks the API server directly why a watch has not synced, for
// a status message (forbidden, unreachable, ...).
func (w *Watcher) whyUnsynced(ctx context.Context, key ObjectKey) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var err error
	switch key.Kind {
	case Secret:
		_, err = w.client.CoreV1().Secrets(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	default:
		_, err = w.client.CoreV1().ConfigMaps(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	}
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return "not read yet"
	case apierrors.IsForbidden(err):
		return "the host may not read it (RBAC)"
	}
	return err.Error()
}
