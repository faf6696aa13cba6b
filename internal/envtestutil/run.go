package envtestutil

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Starter is what Run runs: a controller-runtime manager, a host, anything
// that runs until its context ends.
type Starter interface {
	Start(ctx context.Context) error
}

// StarterFunc makes a function a Starter.
type StarterFunc func(ctx context.Context) error

// Start calls f.
func (f StarterFunc) Start(ctx context.Context) error { return f(ctx) }

// Run starts s for t in the background and returns the function that stops
// it: it cancels s's context and waits for Start to return, at most
// timeout, failing t when Start returned an error or did not return. The
// stop runs at t's cleanup too (whichever comes first; it runs once), so
// nothing a test started outlives it.
func Run(t testing.TB, name string, s Starter, timeout time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s stopped with: %v", name, err)
				}
			case <-time.After(timeout):
				t.Errorf("%s did not stop within %s", name, timeout)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// ManagerOptions are a test manager's options: e's scheme, no metrics or
// probe listeners, a cache confined to namespace ns (suites sharing a
// control plane keep apart by namespace), and no check that controller
// names are unique (every test starts a manager of its own in one process).
// Tests add leader election or a logger as they need.
func (e *Env) ManagerOptions(ns string) ctrl.Options {
	return ctrl.Options{
		Scheme:                 e.Scheme,
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	}
}
