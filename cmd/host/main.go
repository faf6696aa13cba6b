package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/asyncwriter"
	"github.com/troupe-dev/troupe/internal/cmdutil"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/host"
	"github.com/troupe-dev/troupe/internal/memlimit"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/version"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		os.Exit(1)
	}
}

// options are the command line's settings.
type options struct {
	cfg        host.Config
	kubeconfig string
	namespaces string
	qps        float64
	logLevel   string
	logFormat  string
	// memoryLimit and memoryReserve are the flags as given ("" for the
	// cgroup's limit and the default reserve).
	memoryLimit, memoryReserve string
	// archive describes the store; segmentBytes and localTail are the
	// archive's quantities as given.
	archive                                  objstore.Flags
	archiveRecoveryPoint                     time.Duration
	archiveFlushTimeout, archiveRestoreRetry time.Duration
	archiveUploads                           int
	segmentBytes, localTail                  string
	// peerListen, peerTLSDir and peerMovingWait are the peer transport's
	// flags; it is on when peerTLSDir is set.
	peerListen, peerTLSDir string
	peerMovingWait         time.Duration
}

// parse reads flags and the downward-API environment into options.
func parse(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: host [flags]

Runs the Actors assigned to this host pod. Needs NODE_NAME, POD_NAME and
POD_NAMESPACE (downward API), and HOST_PROC=/node/proc with the node's /proc
mounted there so get-system-info reports the node, not the pod. POD_UID
(metadata.uid), when set, makes the pod the owner of the host's Lease, so the
Lease goes with the pod. POD_IP (status.podIP) is the address the Lease
publishes for the peer endpoint (--peer-tls-dir).

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.cfg.DataDir, "data-dir", "/var/lib/troupe", "directory (a hostPath) for the actors' chains and state, the component cache and compiled code")
	fs.DurationVar(&o.cfg.LeaseDuration, "lease-duration", host.DefaultLeaseDuration, "duration of the host's Lease, renewed every third of it (whole seconds)")
	fs.IntVar(&o.cfg.Capacity, "capacity", host.DefaultCapacity, "the most actors this host declares it runs")
	fs.StringVar(&o.cfg.MetricsAddress, "metrics-bind-address", host.DefaultMetricsAddress, `address of /metrics ("0" disables it)`)
	fs.StringVar(&o.cfg.HealthProbeAddress, "health-probe-bind-address", host.DefaultHealthProbeAddress, `address of /healthz and /readyz ("0" disables them)`)
	fs.StringVar(&o.cfg.HTTPAddress, "http-bind-address", host.DefaultHTTPAddress, `address of the read-only chain endpoint (GET /actors, `+host.ChainPath+`); loopback by default, for kubectl port-forward ("0" disables it)`)
	fs.DurationVar(&o.cfg.StatusInterval, "status-interval", host.DefaultStatusInterval, "least time between two status writes of one actor whose chain head moved (lifecycle transitions are written at once)")
	fs.IntVar(&o.cfg.MaxActorMetricSeries, "max-actor-metric-series", runtimehandler.DefaultMaxMetricSeries, "actor metric series the host exports on /metrics, all actors together (one per recorded name per actor); values under a new series beyond it are chained but not exported, and counted in troupe_host_actor_metric_series_dropped_total")
	fs.Float64Var(&o.cfg.StatusWritesPerSecond, "status-writes-per-second", 0, "status writes a second, all actors together: chain-head writes wait their turn (a head that moves meanwhile is written once, the newest), lifecycle writes are made at once (0: a tenth of --kube-api-qps; -1: no cap)")
	fs.StringVar(&o.cfg.OTLPEndpoint, "otlp-endpoint", "", "OTLP/HTTP collector URL (http://otel-collector.observability:4318) to export spans of message deliveries and handler calls to; empty: no tracing, at no cost")
	fs.DurationVar(&o.cfg.StopGrace, "stop-grace", host.DefaultStopGrace, "how long stopping an actor waits for its call in progress before canceling it")
	fs.IntVar(&o.cfg.MaxConcurrentCompiles, "max-concurrent-compiles", 0, "how many modules the host compiles at once (0: one per two CPUs); a module compiled before does not wait")
	fs.DurationVar(&o.cfg.CompileTimeout, "compile-timeout", actorhost.DefaultCompileTimeout, "how long one module may take to compile (a last line: modules past the structural bounds are refused before compiling)")
	d := diskbudget.DefaultNodeLimits()
	fs.Int64Var(&o.cfg.Disk.BytesPerSecond, "node-chain-bytes-per-second", d.BytesPerSecond, "bytes a second all actors together may append to their chains and write as state, shared fairly (-1: no limit)")
	fs.Int64Var(&o.cfg.Disk.BurstBytes, "node-chain-burst-bytes", d.BurstBytes, "bytes all actors together may write at once, past the rate")
	fs.Int64Var(&o.cfg.Disk.EventsPerSecond, "node-chain-events-per-second", d.EventsPerSecond, "chain events a second all actors together may append (-1: no limit)")
	fs.Int64Var(&o.cfg.Disk.BurstEvents, "node-chain-burst-events", d.BurstEvents, "chain events all actors together may append at once")
	fs.Int64Var(&o.cfg.Disk.MinFreeBytes, "disk-min-free-bytes", d.MinFreeBytes, "free-space watermark of the data directory's filesystem, in bytes: below it (or below --disk-min-free-percent, whichever is larger) no actor starts and no append is admitted (-1: off)")
	fs.Float64Var(&o.cfg.Disk.MinFreePercent, "disk-min-free-percent", d.MinFreePercent, "free-space watermark as a percentage of the filesystem's size (-1: off)")
	fs.DurationVar(&o.cfg.DiskPollInterval, "disk-poll-interval", host.DefaultDiskPollInterval, "how often the data directory's free space is read (what actors write in between counts at once)")
	fs.Float64Var(&o.qps, "kube-api-qps", host.DefaultKubeAPIQPS, "requests per second to the API server, all actors together")
	fs.IntVar(&o.cfg.KubeAPIBurst, "kube-api-burst", host.DefaultKubeAPIBurst, "burst of requests to the API server")
	fs.StringVar(&o.memoryLimit, "memory-limit", "", `the host's memory limit, a quantity (512Mi, 2Gi); default: its cgroup's limit. The actors share it less --memory-reserve; "0" turns the memory budget off`)
	fs.StringVar(&o.memoryReserve, "memory-reserve", "", "what the host keeps for itself out of its memory limit, a quantity; default: the larger of 64Mi and an eighth of the limit")
	o.archive.Bind(fs, "archive-", true)
	fs.DurationVar(&o.archiveRecoveryPoint, "archive-recovery-point", host.DefaultArchiveRecoveryPoint, "the longest an event waits on the node before it is uploaded to the archive: what a crash of the node may lose")
	fs.DurationVar(&o.archiveFlushTimeout, "archive-flush-timeout", host.DefaultArchiveFlushTimeout, "the longest a lifecycle step (stop, suspend, delete, a host's shutdown) waits for its actor's chain to be uploaded; past it the step goes on and the events stay on the node until a host uploads them")
	fs.IntVar(&o.archiveUploads, "archive-uploads", host.DefaultArchiveUploads, "the uploads to the archive the host has in flight at once, all its actors together")
	fs.DurationVar(&o.archiveRestoreRetry, "archive-restore-retry", host.DefaultArchiveRestoreRetry, "the longest wait between two reads of the archive while a moved actor waits for it (restorePolicy WaitForNode, or an archive that cannot be read or does not verify)")
	fs.StringVar(&o.segmentBytes, "archive-segment-bytes", "", "seal and upload a chain segment once this many bytes wait, a quantity (default 8Mi)")
	fs.StringVar(&o.localTail, "archive-local-tail", "", `about how much of an archived chain the node keeps, a quantity (default 64Mi; "-1" keeps everything)`)
	fs.StringVar(&o.namespaces, "actor-namespaces", "", "comma-separated namespaces whose Actors this host runs, the only ones whose ConfigMaps and Secrets it reads; an Actor of another namespace is refused (Ready=False, reason NamespaceNotServed). Empty: every namespace")
	fs.StringVar(&o.peerListen, "peer-listen", host.DefaultPeerAddress, "address of the peer endpoint, where other hosts and the gateway deliver messages (HTTP/2, mutual TLS); used with --peer-tls-dir")
	fs.StringVar(&o.peerTLSDir, "peer-tls-dir", "", "directory of the host's peer identity (ca.crt, tls.crt, tls.key: the manager's Secret <release>-host-peer-tls), reloaded when it changes; empty: no messages across hosts")
	fs.DurationVar(&o.peerMovingWait, "peer-moving-wait", 0, "how long a message waits for a target that is moving between hosts before it fails, retriably (0: 5s; a request's own deadline caps it)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, or $KUBECONFIG)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info or error")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or text")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.cfg.KubeAPIQPS = float32(o.qps)
	for _, q := range []struct {
		flag, v string
		to      *uint64
	}{{"--memory-limit", o.memoryLimit, &o.cfg.MemoryLimit}, {"--memory-reserve", o.memoryReserve, &o.cfg.MemoryReserve}} {
		if q.v == "" {
			continue
		}
		n, err := resource.ParseQuantity(q.v)
		if err != nil || n.Sign() < 0 {
			return nil, fmt.Errorf("%s %q: want a quantity of bytes such as 512Mi", q.flag, q.v)
		}
		*q.to = uint64(n.Value())
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if e := o.cfg.OTLPEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--otlp-endpoint=%q: want an http or https URL such as http://otel-collector:4318", e)
		}
	}
	if err := o.parseArchive(getenv); err != nil {
		return nil, err
	}
	if o.namespaces != "" {
		for ns := range strings.SplitSeq(o.namespaces, ",") {
			ns = strings.TrimSpace(ns)
			if ns == "" {
				return nil, fmt.Errorf("--actor-namespaces=%q has an empty entry", o.namespaces)
			}
			o.cfg.ActorNamespaces = append(o.cfg.ActorNamespaces, ns)
		}
	}
	o.cfg.NodeName = getenv("NODE_NAME")
	o.cfg.PodName = getenv("POD_NAME")
	o.cfg.PodNamespace = getenv("POD_NAMESPACE")
	// Optional: with it the pod owns its Lease (see host.Config.PodUID).
	o.cfg.PodUID = getenv("POD_UID")
	if o.peerTLSDir != "" {
		// POD_IP (status.podIP) is what peers dial: the Lease publishes it.
		o.cfg.Peer = &host.PeerConfig{Address: o.peerListen, TLSDir: o.peerTLSDir, AdvertiseHost: getenv("POD_IP"), MovingWait: o.peerMovingWait}
	}
	var missing []string
	for name, v := range map[string]string{"NODE_NAME": o.cfg.NodeName, "POD_NAME": o.cfg.PodName, "POD_NAMESPACE": o.cfg.PodNamespace} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s must be set (from the downward API: spec.nodeName, metadata.name, metadata.namespace)", strings.Join(slices.Sorted(slices.Values(missing)), ", "))
	}
	return o, nil
}

// parseArchive fills cfg.Archive from the --archive-* flags and the AWS
// environment: no bucket and no endpoint is no archive. The store is not
// contacted here; the host reports a store it cannot reach in each actor's
// Archived condition.
func (o *options) parseArchive(getenv func(string) string) error {
	if !o.archive.Enabled() {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"--archive-segment-bytes", o.segmentBytes != ""},
			{"--archive-local-tail", o.localTail != ""},
			{"--archive-recovery-point", o.archiveRecoveryPoint != host.DefaultArchiveRecoveryPoint},
			{"--archive-flush-timeout", o.archiveFlushTimeout != host.DefaultArchiveFlushTimeout},
			{"--archive-uploads", o.archiveUploads != host.DefaultArchiveUploads},
			{"--archive-restore-retry", o.archiveRestoreRetry != host.DefaultArchiveRestoreRetry},
		} {
			if f.set {
				return fmt.Errorf("%s without --archive-bucket: there is no archive to apply it to", f.name)
			}
		}
		return nil
	}
	st, cfg, err := o.archive.Open(getenv)
	if err != nil {
		return fmt.Errorf("--archive-*: %w", err)
	}
	a := &host.ArchiveConfig{Store: st, Where: cfg.String(), RecoveryPoint: o.archiveRecoveryPoint,
		FlushTimeout: o.archiveFlushTimeout, RestoreRetry: o.archiveRestoreRetry, Uploads: o.archiveUploads}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--archive-recovery-point", o.archiveRecoveryPoint}, {"--archive-flush-timeout", o.archiveFlushTimeout}, {"--archive-restore-retry", o.archiveRestoreRetry}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %s: must be positive", d.flag, d.v)
		}
	}
	if o.archiveUploads <= 0 {
		return fmt.Errorf("--archive-uploads %d: must be positive", o.archiveUploads)
	}
	for _, q := range []struct {
		flag, v  string
		to       *int64
		negative bool
	}{{"--archive-segment-bytes", o.segmentBytes, &a.SegmentBytes, false}, {"--archive-local-tail", o.localTail, &a.LocalTail, true}} {
		if q.v == "" {
			continue
		}
		n, err := resource.ParseQuantity(q.v)
		if err != nil || n.Sign() == 0 || (n.Sign() < 0 && !q.negative) {
			return fmt.Errorf("%s %q: want a positive quantity of bytes such as 8Mi", q.flag, q.v)
		}
		*q.to = n.Value()
	}
	o.cfg.Archive = a
	return nil
}

// maxLogQueue bounds the host's log lines waiting for stderr.
const maxLogQueue = 4 << 20

// logFlushGrace is how long an exiting host waits for stderr to take its
// last log lines.
const logFlushGrace = 5 * time.Second

// newLogOutput is the host's logger: its records (the actors' log lines
// among them) go to w through an asyncwriter, so a container runtime that
// stalls the host's stderr never holds up a guest's call; lines past the
// queue are dropped, and a record counting them stands in their place.
func newLogOutput(level, format string, w io.Writer) (logr.Logger, *asyncwriter.Writer, error) {
	// The notice is formatted by a logger of its own, straight to a buffer.
	notice := func(n uint64) []byte {
		var b bytes.Buffer
		l, _ := cmdutil.NewLogger("info", format, &b)
		l.WithName("host").Info("log lines dropped: stderr did not keep up", "dropped", n)
		return b.Bytes()
	}
	if _, err := cmdutil.NewLogger(level, format, io.Discard); err != nil {
		return logr.Logger{}, nil, err
	}
	out := asyncwriter.New(w, maxLogQueue, notice, nil)
	log, _ := cmdutil.NewLogger(level, format, out)
	return log, out, nil
}

// memoryLimits sets the host's memory limit from its cgroup unless
// --memory-limit gave one, and the Go runtime's soft limit from it unless
// GOMEMLIMIT did: a host that lets its heap grow to its cgroup's limit is
// OOM-killed with every actor on the node. The host then keeps the Go
// limit below its limit less the actors' memory outside the Go heap.
func memoryLimits(o *options, getenv func(string) string, log logr.Logger) error {
	if o.memoryLimit == "" {
		n, src, err := memlimit.CgroupLimit("/")
		if err != nil {
			return fmt.Errorf("reading the memory limit (set --memory-limit to skip it): %w", err)
		}
		o.cfg.MemoryLimit = n
		log.Info("memory limit", "bytes", n, "from", src.File, "cgroupVersion", src.Version)
	}
	if o.cfg.MemoryLimit == 0 {
		log.Info("no memory limit: the actors' memory is bounded by --capacity and each actor's own limit only")
		return nil
	}
	o.cfg.TrackProcessMemory = getenv("GOMEMLIMIT") == ""
	if o.cfg.TrackProcessMemory {
		reserve := o.cfg.MemoryReserve
		if reserve == 0 {
			reserve = max(host.DefaultMemoryReserve, o.cfg.MemoryLimit/8)
		}
		if reserve < o.cfg.MemoryLimit {
			// Before any actor runs, all but a sixteenth; the host lowers
			// it as the actors' linear memory grows.
			debug.SetMemoryLimit(int64(o.cfg.MemoryLimit - o.cfg.MemoryLimit/16))
		}
	}
	return nil
}

func run(args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, out, err := newLogOutput(o.logLevel, o.logFormat, stderr)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), logFlushGrace)
		defer cancel()
		_ = out.Close(ctx)
	}()
	ctrl.SetLogger(log)
	o.cfg.Logger = log
	o.cfg.Version = version.String()
	if o.cfg.RestConfig, err = cmdutil.RESTConfig(o.kubeconfig); err != nil {
		return fmt.Errorf("connecting to the API server: %w", err)
	}
	if err := memoryLimits(o, getenv, log); err != nil {
		return err
	}
	// The flags win over what the kubeconfig loader chose.
	o.cfg.RestConfig.QPS, o.cfg.RestConfig.Burst = o.cfg.KubeAPIQPS, o.cfg.KubeAPIBurst
	h, err := host.New(o.cfg)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	start := time.Now()
	err = h.Start(ctx)
	log.Info("host exited", "uptime", time.Since(start).Round(time.Second).String())
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
