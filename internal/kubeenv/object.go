package kubeenv

// WatchObject watches one ConfigMap or Secret for a caller that waits for
// it to appear or change, such as a host waiting for the ConfigMap that
// holds an actor's component, sharing the watch with every Env that
// references the same object. The Env it returns declares no variable:
// select on its Changes (which also fires once the first list found the
// object) and Close it when done.
func (w *Watcher) WatchObject(key ObjectKey) *Env {
	e := &Env{w: w, namespace: key.Namespace, vars: map[string]*envVar{}, changes: make(chan struct{}, 1)}
	e.objs = []*watched{w.acquire(key, e)}
	return e
}
