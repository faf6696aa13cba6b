package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archiver"
	"github.com/troupe-dev/troupe/internal/component"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/eventsink"
	"github.com/troupe-dev/troupe/internal/kubeenv"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/tracing/otlp"
	"github.com/troupe-dev/troupe/internal/version"
)

// Host is one node's actor host. Build it with New, run it with Start.
type Host struct {
	cfg      Config
	log      logr.Logger
	mgr      manager.Manager
	client   client.Client // cached Actors; direct for everything else
	api      client.Reader // always the API server
	events   events.EventRecorder
	engine   *actorhost.Engine
	fetcher  *component.Fetcher
	envs     *kubeenv.Watcher
	actorMet *runtimehandler.MetricsRegistry
	metrics  *hostMetrics
	pub      *publisher
	// msgMetrics are the actors' message metrics (msgmetrics.go).
	msgMetrics *messageMetrics
	// nsLabels are the namespaces' labels, for the cross-namespace policy.
	nsLabels *namespaceLabels
	mem      *hostMemory
	disk     *diskbudget.Node
	// archiver ships the actors' chains to the archive; nil without one.
	archiver *archiver.Archiver
	// leftovers is closed per actor directory once what an earlier run
	// left there was archived (archive.go); written before the manager
	// starts, read-only after.
	leftovers map[string]chan struct{}

	listeners map[string]net.Listener // by address, shared by the servers on it
	// peer is the host-to-host transport; nil without Config.Peer.
	peer *peer

	mu      sync.Mutex
	runs    map[types.NamespacedName]*run
	closing bool
	// resolved remembers what an image tag resolved to for a generation,
	// so that restarts of that generation run the same module.
	resolved map[types.NamespacedName]resolution

	leaseRenewed atomic.Int64 // UnixNano of the last successful renewal
	cacheSynced  atomic.Bool
	started      atomic.Bool
}

type resolution struct {
	generation int64
	image      string // the spec's reference
	resolved   string // what it resolved to
}

// NewScheme returns the scheme a host needs: the built-in kinds and Actors.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// New builds a host from cfg: its manager (a cache of the Actors assigned
// to it, and nothing else), engine, fetcher, env watcher and listeners.
func New(cfg Config) (*Host, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("configuring the host: %w", err)
	}
	log := cfg.Logger.WithValues("hostPod", cfg.PodName)
	for _, d := range []string{cfg.DataDir, cfg.CompilationCacheDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg.RestConfig, manager.Options{
		Scheme: scheme,
		Logger: log,
		// The host's cache holds its own Actors only: its memory grows with
		// what it runs, not with the cluster.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.Actor{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.AssignedHostLabel: cfg.PodName})},
		}},
		// Nothing else is cached: a Get of a ConfigMap or Secret through the
		// client must never start a cluster-wide informer.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{
			&corev1.ConfigMap{}, &corev1.Secret{}, &coordinationv1.Lease{}, &corev1.Event{}, &eventsv1.Event{},
		}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Several hosts share a process in tests.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg.RestConfig)
	if err != nil {
		return nil, fmt.Errorf("creating a clientset: %w", err)
	}
	// Events through a client of their own: a burst's Started Events
	// follow its status writes instead of competing with them (and with
	// them for the host's QPS).
	sink, err := eventsink.New(cfg.RestConfig, eventsink.Options{})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(sink); err != nil {
		return nil, fmt.Errorf("adding the Event sink: %w", err)
	}
	h := &Host{
		// Every write names the host as its field manager, so managedFields
		// show which fields it owns (PROTOCOL.md#ownership).
		cfg: cfg, log: log, mgr: mgr, client: client.WithFieldOwner(mgr.GetClient(), v1alpha1.HostFieldOwner), api: mgr.GetAPIReader(),
		events:    sink.Recorder(mgr.GetScheme(), "troupe-host"),
		envs:      kubeenv.NewWatcher(cs, log.WithName("env")),
		actorMet:  runtimehandler.NewMetricsRegistry(cfg.MaxActorMetricSeries),
		runs:      map[types.NamespacedName]*run{},
		resolved:  map[types.NamespacedName]resolution{},
		listeners: map[string]net.Listener{},
		mem:       newHostMemory(cfg.MemoryLimit, cfg.MemoryReserve),
		disk:      diskbudget.NewNode(cfg.Disk, diskbudget.NodeOptions{Dir: cfg.DataDir, FreeSpace: cfg.FreeSpace}),
	}
	if h.nsLabels, err = watchNamespaceLabels(context.Background(), mgr.GetCache()); err != nil {
		return nil, err
	}
	h.metrics = newHostMetrics(h.actorMet, func() float64 { return float64(h.runningCount()) }, h.envs)
	h.metrics.registry.MustRegister(&memoryCollector{h: h})
	h.metrics.registry.MustRegister(actorStates{h: h})
	h.msgMetrics = newMessageMetrics(h.runningActors)
	h.metrics.registry.MustRegister(h.msgMetrics)
	if err := h.newArchiver(); err != nil {
		return nil, err
	}
	h.pub = newPublisher(h.client, h.api, cfg.PodName, cfg.StatusInterval, cfg.StatusWritesPerSecond, log.WithName("status"), h.metrics)
	h.pub.node = cfg.NodeName
	cache, err := component.NewCache(filepath.Join(cfg.DataDir, actordir.ComponentCacheDir))
	if err != nil {
		return nil, err
	}
	h.fetcher = component.NewFetcher(component.Options{
		Cache: cache, Reader: h.api, HTTPClient: cfg.HTTPClient, RegistryTransport: cfg.RegistryTransport,
		UserAgent: "troupe-host/" + version.String(), Logger: log.WithName("component"),
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Actor{}).
		Named("troupe-host").
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).
		Complete(reconcile.Func(h.reconcile)); err != nil {
		return nil, fmt.Errorf("creating the actor reconciler: %w", err)
	}
	if err := h.listen(); err != nil {
		h.closeListeners()
		return nil, err
	}
	if cfg.Peer != nil {
		if err := h.newPeer(context.Background()); err != nil {
			h.closeListeners()
			return nil, fmt.Errorf("the peer transport: %w", err)
		}
	}
	return h, nil
}

// Start runs the host until ctx ends, then shuts it down: it stops every
// actor (flushing its chain), publishes their final chain heads and
// deletes its Lease, so the controller moves its actors at once.
func (h *Host) Start(ctx context.Context) error {
	if !h.started.CompareAndSwap(false, true) {
		return errors.New("host already started")
	}
	// The disk budget's watermark is read before any actor starts.
	if err := h.disk.Poll(); err != nil {
		h.log.Error(err, "the free-space watermark is off until the free space can be read")
	}
	tracer, stopTracing, err := h.startTracing(ctx)
	if err != nil {
		h.closeListeners()
		return err
	}
	defer stopTracing()
	engine, err := actorhost.NewEngine(ctx, actorhost.EngineOptions{
		CacheDir: h.cfg.CompilationCacheDir, Logger: h.log.WithName("actor"), Metrics: h.actorMet,
		SystemInfo: runtimehandler.NewNodeSystemInfo(h.cfg.NodeName, 2*time.Second), Version: h.cfg.Version,
		MemoryBudget:          h.mem.budget,
		MaxConcurrentCompiles: h.cfg.MaxConcurrentCompiles, CompileTimeout: h.cfg.CompileTimeout,
		DiskBudget: h.disk, MessageTimings: h.msgMetrics,
		Remote:          h.remote(),
		NamespaceLabels: h.nsLabels.get, Tracer: tracer,
	})
	if err != nil {
		h.closeListeners()
		return fmt.Errorf("starting the engine: %w", err)
	}
	h.engine = engine
	// The manager and everything under it outlive ctx until the shutdown
	// below has used them.
	mgrCtx, stopMgr := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMgr()
	var wg sync.WaitGroup
	// Before any run can start: runs wait for their directory's leftovers.
	h.startLeftovers(mgrCtx, &wg)
	errc := make(chan error, 4)
	wg.Go(func() { errc <- h.mgr.Start(mgrCtx) })
	wg.Go(func() { h.pub.run(mgrCtx, 4) })
	leaseCtx, stopLease := context.WithCancel(mgrCtx)
	defer stopLease()
	wg.Go(func() { h.runLease(leaseCtx) })
	wg.Go(func() { h.pollHeads(mgrCtx) })
	if h.archiver != nil {
		wg.Go(func() { h.archiver.Run(mgrCtx) })
	}
	wg.Go(func() { h.runMemory(mgrCtx) })
	wg.Go(func() { h.watchDisk(mgrCtx) })
	wg.Go(func() { h.logDisk(mgrCtx) })
	wg.Go(func() {
		// Ready once it knows its actors and, with a peer transport, where
		// every other actor runs.
		if h.mgr.GetCache().WaitForCacheSync(mgrCtx) && (h.peer == nil || h.peer.cache.WaitForCacheSync(mgrCtx)) {
			h.cacheSynced.Store(true)
		}
	})
	servers := h.serve(&wg)
	if h.peer != nil {
		servers = append(servers, h.peer.serve(&wg))
	}
	h.log.Info("host started", "node", h.cfg.NodeName, "dataDir", h.cfg.DataDir, "addresses", h.Addresses(),
		"memoryLimit", h.cfg.MemoryLimit, "actorMemoryBudget", h.mem.budget.Limit())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		if runErr != nil {
			runErr = fmt.Errorf("running the manager: %w", runErr)
		}
	}
	h.shutdown(stopLease)
	for _, s := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.Shutdown(sctx)
		cancel()
	}
	stopMgr()
	wg.Wait()
	if h.peer != nil {
		h.peer.client.Close()
	}
	h.envs.Close()
	cctx, cancel := context.WithTimeout(context.Background(), h.cfg.StopGrace)
	defer cancel()
	if err := engine.Close(cctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("closing the engine: %w", err)
	}
	h.log.Info("host stopped")
	return runErr
}

// startTracing installs the OpenTelemetry SDK when --otlp-endpoint is
// set; otherwise the tracer is nil and nothing of it runs. stop flushes
// the spans left, bounded.
func (h *Host) startTracing(ctx context.Context) (tracer trace.Tracer, stop func(), err error) {
	if h.cfg.OTLPEndpoint == "" {
		return nil, func() {}, nil
	}
	tracer, shutdown, err := otlp.Setup(ctx, otlp.Options{Endpoint: h.cfg.OTLPEndpoint, ServiceName: "troupe-host", Version: h.cfg.Version})
	if err != nil {
		return nil, nil, fmt.Errorf("starting tracing: %w", err)
	}
	h.log.Info("exporting spans", "otlpEndpoint", h.cfg.OTLPEndpoint)
	return tracer, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			h.log.Error(err, "flushing the last spans")
		}
	}, nil
}

// shutdown stops every actor, publishes the final heads and deletes the
// Lease.
func (h *Host) shutdown(stopLease context.CancelFunc) {
	h.mu.Lock()
	h.closing = true
	runs := make([]*run, 0, len(h.runs))
	for _, r := range h.runs {
		runs = append(runs, r)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() { h.stopRun(r, "the host is shutting down") })
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.pub.flush(ctx)
	stopLease()
	h.deleteLease(ctx)
}

func (h *Host) runningCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.runs {
		if r.isRunning() {
			n++
		}
	}
	return n
}

// runningActors are the actors running now, by key, for the mailbox
// gauge.
func (h *Host) runningActors() map[types.NamespacedName]*actorhost.Actor {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[types.NamespacedName]*actorhost.Actor, len(h.runs))
	for key, r := range h.runs {
		r.mu.Lock()
		if r.actor != nil && r.state == stateRunning {
			out[key] = r.actor
		}
		r.mu.Unlock()
	}
	return out
}

// Gatherer returns what /metrics serves: the host's metrics, its actors'
// and controller-runtime's.
func (h *Host) Gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{h.metrics.registry, ctrlmetrics.Registry}
}

// Addresses returns where each server listens: "metrics", "probes" and
// "http" (the chain endpoint), for those enabled.
func (h *Host) Addresses() map[string]string {
	out := map[string]string{}
	for name, addr := range map[string]string{"metrics": h.cfg.MetricsAddress, "probes": h.cfg.HealthProbeAddress, "http": h.cfg.HTTPAddress} {
		if l := h.listeners[addr]; l != nil {
			out[name] = l.Addr().String()
		}
	}
	if h.peer != nil {
		out["peer"] = h.peer.listener.Addr().String()
	}
	return out
}

// remote is the engine's way to the actors of other hosts; nil without a
// peer transport.
func (h *Host) remote() actorhost.Remote {
	if h.peer == nil {
		return nil
	}
	return h.peer.remote()
}
