package host

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/archiver"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// Defaults of a host's settings.
const (
	DefaultLeaseDuration = v1alpha1.DefaultLeaseDurationSeconds * time.Second
	DefaultCapacity      = v1alpha1.DefaultHostCapacity
	// DefaultStatusInterval bounds chain-head-only status writes to 12 a
	// minute per actor; the host-wide cap (StatusWritesPerSecond) bounds
	// a node of 1,000 chatty actors, which would want ~200 writes/s, and
	// lifecycle transitions (Running, Failed, Stopped) are written at once
	// regardless.
	DefaultStatusInterval     = 5 * time.Second
	DefaultStopGrace          = 10 * time.Second
	DefaultMetricsAddress     = ":8080"
	DefaultHealthProbeAddress = ":8081"
	// DefaultHTTPAddress serves the chain endpoint on the pod's loopback
	// only: `kubectl port-forward` reaches it, the pod network does not.
	DefaultHTTPAddress = "127.0.0.1:8082"
	// DefaultKubeAPIQPS and DefaultKubeAPIBurst bound the host's requests
	// to the API server, all actors together: a second line of defense
	// behind the per-actor status interval.
	DefaultKubeAPIQPS   = 100
	DefaultKubeAPIBurst = 200
	// statusWritesShare is the share of the host's API QPS its status
	// writes may take by default, all actors together: the rest stays for
	// what must not wait behind chain heads (Lease renewals, Events, reads
	// of components and env). docs/host.md#status-writes derives it from
	// the API server's capacity.
	statusWritesShare = 0.1
	// DefaultEnvSyncTimeout bounds the first read of an actor's
	// ConfigMaps and Secrets before the host reports why it is stuck.
	DefaultEnvSyncTimeout = 30 * time.Second
	// DefaultDiskPollInterval is how often the free space of the data
	// directory is read; what the actors write in between counts against
	// it at once.
	DefaultDiskPollInterval = time.Second
)

// Defaults of the archive's settings (docs/archive.md).
const (
	// DefaultArchiveRecoveryPoint bounds the events a crash of the node
	// can lose from the archive: a segment is sealed and uploaded at most
	// this long after its first event became durable.
	DefaultArchiveRecoveryPoint = 10 * time.Second
	// DefaultArchiveSegmentBytes seals a segment early when it grows this
	// large, so that one upload stays small and a restore reads little.
	DefaultArchiveSegmentBytes = 8 << 20
	// DefaultArchiveLocalTail is what of an archived chain a node keeps:
	// once the archive holds a chain's older events, the node drops them
	// and keeps about this many bytes of the newest.
	DefaultArchiveLocalTail = 64 << 20
	// DefaultArchiveRestoreRetry is the longest wait between two reads of
	// the archive by a moved actor that waits for it.
	DefaultArchiveRestoreRetry = 30 * time.Second
	// DefaultArchiveFlushTimeout bounds how long a lifecycle step (stop,
	// suspend, delete, shutdown, a move) waits for the rest of the chain
	// to reach the archive before it reports done anyway, saying so.
	DefaultArchiveFlushTimeout = 30 * time.Second
	// DefaultArchiveUploads bounds the uploads a host has in flight, all
	// its actors together.
	DefaultArchiveUploads = archiver.DefaultConcurrency
)

// ArchiveConfig is where and how the host archives its actors' chains
// and states (docs/archive.md).
type ArchiveConfig struct {
	// Store is the object store; required.
	Store objstore.Store
	// Where names the store without credentials, for logs, Events and
	// status (objstore.Config.String()).
	Where string
	// RecoveryPoint is the longest an event waits on the node before it
	// is uploaded; 0 is DefaultArchiveRecoveryPoint.
	RecoveryPoint time.Duration
	// SegmentBytes seals a segment once this many bytes wait; 0 is
	// DefaultArchiveSegmentBytes.
	SegmentBytes int64
	// LocalTail is about how many bytes of an archived chain the node
	// keeps; 0 is DefaultArchiveLocalTail, negative keeps everything.
	LocalTail int64
	// RestoreRetry is the longest wait between two reads of the archive
	// while a moved actor waits for it (restorePolicy WaitForNode, or an
	// archive that cannot be read or does not verify); 0 is
	// DefaultArchiveRestoreRetry.
	RestoreRetry time.Duration
	// FlushTimeout bounds the upload a lifecycle step waits for; 0 is
	// DefaultArchiveFlushTimeout.
	FlushTimeout time.Duration
	// Uploads bounds the uploads in flight on the host; 0 is
	// DefaultArchiveUploads.
	Uploads int
}

// withDefaults fills the zero fields and checks the rest.
func (a ArchiveConfig) withDefaults() (ArchiveConfig, error) {
	var errs []error
	if a.Store == nil {
		errs = append(errs, errors.New("the archive needs a store"))
	}
	if a.RecoveryPoint == 0 {
		a.RecoveryPoint = DefaultArchiveRecoveryPoint
	}
	if a.RecoveryPoint < 0 {
		errs = append(errs, fmt.Errorf("archive recovery point %s must be positive", a.RecoveryPoint))
	}
	if a.SegmentBytes == 0 {
		a.SegmentBytes = DefaultArchiveSegmentBytes
	}
	if a.SegmentBytes < 0 {
		errs = append(errs, fmt.Errorf("archive segment size %d must be positive", a.SegmentBytes))
	}
	if a.LocalTail == 0 {
		a.LocalTail = DefaultArchiveLocalTail
	}
	if a.RestoreRetry == 0 {
		a.RestoreRetry = DefaultArchiveRestoreRetry
	}
	if a.RestoreRetry < 0 {
		errs = append(errs, fmt.Errorf("archive restore retry %s must be positive", a.RestoreRetry))
	}
	if a.FlushTimeout == 0 {
		a.FlushTimeout = DefaultArchiveFlushTimeout
	}
	if a.FlushTimeout < 0 || a.Uploads < 0 {
		errs = append(errs, fmt.Errorf("archive flush timeout %s and uploads %d must not be negative", a.FlushTimeout, a.Uploads))
	}
	return a, errors.Join(errs...)
}

// maxNamespacesAnnotation bounds the Lease annotation that lists the
// actor namespaces (about 1,000 of the longest names): a quarter of what
// the API server allows all annotations of an object together.
const maxNamespacesAnnotation = 64 << 10

// Config is everything a host needs. NodeName, PodName, PodNamespace,
// DataDir and RestConfig are required.
type Config struct {
	// NodeName is the node the host runs on (downward API spec.nodeName):
	// get-system-info's hostname and the Lease's node annotation.
	NodeName string
	// PodName is the host pod's name (metadata.name): the Lease's name, the
	// value of the assigned-host label and of status.hostPod it runs.
	PodName string
	// PodNamespace is the host pod's namespace, where its Lease lives.
	PodNamespace string
	// PodUID is the host pod's UID (metadata.uid), optional. When set, the
	// pod owns the Lease, so the garbage collector deletes the Lease with
	// the pod even when the host could not: `helm uninstall` deletes the
	// host's RBAC while the host is still shutting down, and a host that
	// crashes for good never deletes it.
	PodUID string
	// ActorNamespaces are the namespaces whose Actors the host runs, the
	// only ones whose ConfigMaps and Secrets it reads (the chart grants it
	// those rights there and nowhere else); empty means every namespace.
	// An Actor of another namespace assigned to it is refused: Ready=False,
	// reason NamespaceNotServed. The Lease declares them
	// (v1alpha1.NamespacesAnnotation), so the manager places no such Actor
	// here.
	ActorNamespaces []string
	// DataDir holds the actors' chains and state
	// (<data-dir>/<namespace>/<name>/<actorID>/), the component cache
	// (<data-dir>/_components) and the compilation cache (<data-dir>/_wazero).
	DataDir string
	// CompilationCacheDir overrides where compiled code is cached.
	CompilationCacheDir string
	// RestConfig reaches the API server. Its QPS and Burst, when zero, are
	// KubeAPIQPS and KubeAPIBurst.
	RestConfig *rest.Config
	// KubeAPIQPS and KubeAPIBurst rate-limit the host's API requests; 0 is
	// the default.
	KubeAPIQPS   float32
	KubeAPIBurst int

	// LeaseDuration is the Lease's duration; the host renews it every
	// third of it.
	LeaseDuration time.Duration
	// Capacity is the most actors the host declares it runs.
	Capacity int
	// StatusInterval is the least time between two status writes of one
	// actor that only move its chain head; lifecycle transitions are
	// written at once.
	StatusInterval time.Duration
	// StatusWritesPerSecond caps the status writes of all the host's
	// actors together: head-only writes wait for their turn (the heads
	// that move meanwhile coalesce into one write), lifecycle writes are
	// made at once (taking a token when one is free). 0 is a tenth of KubeAPIQPS (10 a second
	// by default); negative is no cap.
	StatusWritesPerSecond float64
	// MaxActorMetricSeries caps the actor metric series the host exports
	// on /metrics (one per recorded name per actor); values recorded under
	// a new series beyond it are still chained but not exported. 0 is
	// runtimehandler.DefaultMaxMetricSeries.
	MaxActorMetricSeries int
	// OTLPEndpoint, when set, is the OTLP/HTTP collector the host sends
	// the spans of its actors' deliveries and handler calls to
	// (http://collector:4318); "" makes no span and installs no SDK.
	OTLPEndpoint string
	// StopGrace is how long a stop waits for the call in progress before
	// canceling it.
	StopGrace time.Duration
	// EnvSyncTimeout bounds the first read of an actor's env sources.
	EnvSyncTimeout time.Duration
	// MaxConcurrentCompiles is how many modules the host compiles at once
	// (a module it compiled before takes no turn); 0 is one per two CPUs.
	MaxConcurrentCompiles int
	// CompileTimeout bounds one module's compile, the last line behind the
	// structural bounds checked first; 0 is actorhost.DefaultCompileTimeout.
	CompileTimeout time.Duration

	// MemoryLimit is the memory the host may use, bytes: its cgroup's
	// limit (cmd/host reads it, or --memory-limit). 0 is none: the host
	// keeps no memory budget and declares no memory in its Lease.
	MemoryLimit uint64
	// MemoryReserve is what the host keeps for itself out of MemoryLimit;
	// the actors share the rest. 0 is the larger of DefaultMemoryReserve
	// and an eighth of the limit.
	MemoryReserve uint64
	// TrackProcessMemory, for a host alone in its process, measures the
	// process's resident memory: the budget shrinks when the host's own
	// memory outgrows MemoryReserve, the Go runtime's memory limit
	// (GOMEMLIMIT) follows the actors' memory outside the Go heap, and
	// freed code goes back to the OS at once. Tests that run several
	// hosts in one process leave it off.
	TrackProcessMemory bool
	// Disk is the node-wide disk budget all the host's actors share: their
	// append rates and the free-space watermark of DataDir's filesystem. A
	// zero field is its default (diskbudget.DefaultNodeLimits), a negative
	// one turns that limit off.
	Disk diskbudget.NodeLimits
	// FreeSpace reads the free space of DataDir's filesystem; nil is
	// statfs. Tests inject their own.
	FreeSpace diskbudget.FreeSpaceFunc
	// DiskPollInterval is how often it is read; 0 is
	// DefaultDiskPollInterval.
	DiskPollInterval time.Duration

	// Archive, when set, keeps the actors' chains and states in object
	// storage too, so that they outlive the node: an actor that moves is
	// restored from it (docs/archive.md). nil keeps them on the node only.
	Archive *ArchiveConfig

	// MetricsAddress, HealthProbeAddress and HTTPAddress are where /metrics,
	// /healthz and /readyz, and the chain endpoint listen; "0" disables one.
	// Several may share an address.
	MetricsAddress, HealthProbeAddress, HTTPAddress string

	// Peer is the host-to-host transport (peer.go); nil: the host
	// neither serves nor sends messages across hosts, and its actors reach
	// only the actors it runs.
	Peer *PeerConfig

	// RegistryTransport and HTTPClient override how components are
	// downloaded (tests trust their own registries and servers).
	RegistryTransport http.RoundTripper
	HTTPClient        *http.Client

	// Version is what get-theater-version returns; "" is the build's.
	Version string
	// Logger receives the host's logs and the actors' log lines.
	Logger logr.Logger
}

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	for _, f := range []struct{ name, env, v string }{
		{"NodeName", "NODE_NAME", c.NodeName},
		{"PodName", "POD_NAME", c.PodName},
		{"PodNamespace", "POD_NAMESPACE", c.PodNamespace},
	} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is required: set %s from the downward API", f.name, f.env))
		}
	}
	if c.PodName != "" {
		if msgs := validation.IsDNS1123Subdomain(c.PodName); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("pod name %q: %s", c.PodName, strings.Join(msgs, "; ")))
		} else if msgs := validation.IsValidLabelValue(c.PodName); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("pod name %q cannot be a label value: %s", c.PodName, strings.Join(msgs, "; ")))
		}
	}
	if c.PodNamespace != "" {
		if msgs := validation.IsDNS1123Label(c.PodNamespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("pod namespace %q: %s", c.PodNamespace, strings.Join(msgs, "; ")))
		}
	}
	for _, ns := range c.ActorNamespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("actor namespace %q: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	if len(c.ActorNamespaces) > 0 {
		c.ActorNamespaces = slices.Compact(slices.Sorted(slices.Values(c.ActorNamespaces)))
		// A Lease whose annotations pass 256 KiB is refused: the host
		// would never renew it.
		if n := len(v1alpha1.JoinNamespaces(c.ActorNamespaces)); n > maxNamespacesAnnotation {
			errs = append(errs, fmt.Errorf("%d actor namespaces take %d bytes in the Lease annotation %s, more than %d", len(c.ActorNamespaces), n, v1alpha1.NamespacesAnnotation, maxNamespacesAnnotation))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("a data directory is required (--data-dir)"))
	} else if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	if c.KubeAPIQPS == 0 {
		c.KubeAPIQPS = DefaultKubeAPIQPS
	}
	if c.KubeAPIBurst == 0 {
		c.KubeAPIBurst = DefaultKubeAPIBurst
	}
	if c.RestConfig == nil {
		errs = append(errs, errors.New("a connection to the API server is required"))
	} else {
		rc := rest.CopyConfig(c.RestConfig)
		if rc.QPS == 0 {
			rc.QPS = c.KubeAPIQPS
		}
		if rc.Burst == 0 {
			rc.Burst = c.KubeAPIBurst
		}
		c.RestConfig = rc
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.LeaseDuration < time.Second || c.LeaseDuration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("lease duration %s must be a whole number of seconds, at least 1s", c.LeaseDuration))
	}
	if c.Capacity == 0 {
		c.Capacity = DefaultCapacity
	}
	if c.Capacity < 0 {
		errs = append(errs, fmt.Errorf("capacity %d must be positive", c.Capacity))
	}
	if c.MemoryLimit > 0 && c.MemoryReserve >= c.MemoryLimit {
		errs = append(errs, fmt.Errorf("memory reserve %s leaves nothing of the memory limit %s for actors",
			textutil.FormatBytes(c.MemoryReserve), textutil.FormatBytes(c.MemoryLimit)))
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.StatusInterval < 0 {
		errs = append(errs, fmt.Errorf("status interval %s must be positive", c.StatusInterval))
	}
	if c.StatusWritesPerSecond == 0 {
		c.StatusWritesPerSecond = float64(c.KubeAPIQPS) * statusWritesShare
	}
	if c.StopGrace == 0 {
		c.StopGrace = DefaultStopGrace
	}
	if c.EnvSyncTimeout == 0 {
		c.EnvSyncTimeout = DefaultEnvSyncTimeout
	}
	def := diskbudget.DefaultNodeLimits()
	for _, f := range []struct{ v, def *int64 }{
		{&c.Disk.BytesPerSecond, &def.BytesPerSecond}, {&c.Disk.BurstBytes, &def.BurstBytes},
		{&c.Disk.EventsPerSecond, &def.EventsPerSecond}, {&c.Disk.BurstEvents, &def.BurstEvents},
		{&c.Disk.MinFreeBytes, &def.MinFreeBytes},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if c.Disk.MinFreePercent == 0 {
		c.Disk.MinFreePercent = def.MinFreePercent
	}
	if c.Disk.MinFreePercent >= 100 {
		errs = append(errs, fmt.Errorf("disk min free percent %g must be below 100", c.Disk.MinFreePercent))
	}
	if c.DiskPollInterval == 0 {
		c.DiskPollInterval = DefaultDiskPollInterval
	}
	if c.DiskPollInterval < 0 {
		errs = append(errs, fmt.Errorf("disk poll interval %s must be positive", c.DiskPollInterval))
	}
	if c.Archive != nil {
		a, err := c.Archive.withDefaults()
		errs = append(errs, err)
		c.Archive = &a
	}
	if c.Peer != nil {
		p, err := c.Peer.withDefaults()
		errs = append(errs, err)
		c.Peer = &p
	}
	if c.CompilationCacheDir == "" && c.DataDir != "" {
		c.CompilationCacheDir = filepath.Join(c.DataDir, actordir.CompilationCacheDir)
	}
	if c.Logger.GetSink() == nil {
		c.Logger = logr.Discard()
	}
	return c, errors.Join(errs...)
}

// serves reports whether the host runs Actors of namespace ns.
func (c *Config) serves(ns string) bool {
	return len(c.ActorNamespaces) == 0 || slices.Contains(c.ActorNamespaces, ns)
}
