package controllers

import (
	"context"
	"fmt"
	"maps"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/troupe-dev/troupe/internal/kubescheme"
)

// NewManager builds the manager that runs r, the one place that wires it:
// the scheme, the cache (host Leases in r's host namespace only), r's index
// and watches, and the health and readiness checks. cmd/manager and the
// test suites call it alike; they differ only in opts (addresses, leader
// election, logger, a namespace to confine a suite's cache to) and in r's
// knobs. ctx bounds the setup, not the manager: mgr.Start runs it.
func NewManager(ctx context.Context, cfg *rest.Config, opts ctrl.Options, r *ActorReconciler) (ctrl.Manager, error) {
	if opts.Scheme == nil {
		s, err := kubescheme.New()
		if err != nil {
			return nil, err
		}
		opts.Scheme = s
	}
	opts.Cache.ByObject = maps.Clone(opts.Cache.ByObject)
	if opts.Cache.ByObject == nil {
		opts.Cache.ByObject = map[client.Object]cache.ByObject{}
	}
	// Only the hosts' Leases, not every Lease in the cluster.
	opts.Cache.ByObject[&coordinationv1.Lease{}] = cache.ByObject{
		Namespaces: map[string]cache.Config{r.HostNamespace: {}},
		Label:      hostLeaseSelector(),
	}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("setting up the actor controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding the readiness check: %w", err)
	}
	return mgr, nil
}
