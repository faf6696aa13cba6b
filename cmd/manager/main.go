package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/controllers"
	"github.com/troupe-dev/troupe/internal/cmdutil"
	"github.com/troupe-dev/troupe/internal/msgwire"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/peerca"
	"github.com/troupe-dev/troupe/internal/version"
)

// Defaults of the flags.
const (
	// DefaultLeaderElectionID names the leader election Lease; the
	// leader-election Role grants access to this name only.
	DefaultLeaderElectionID = "troupe-manager.theater.troupe.dev"
	// DefaultHostNamespace is where host pods run when neither
	// --host-namespace nor POD_NAMESPACE says.
	DefaultHostNamespace = "troupe-system"
)

func main() {
	if err := run(ctrl.SetupSignalHandler(), os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

// options are the command line's settings.
type options struct {
	kubeconfig              string
	metricsAddr             string
	probeAddr               string
	leaderElect             bool
	leaderElectionID        string
	leaderElectionNamespace string
	hostNamespace           string
	backoff                 controllers.Backoff
	noHostGrace             time.Duration
	flushTimeout            time.Duration
	workers                 int
	zap                     zap.Options
	// archive is the installation's store (no bucket: none); the manager
	// removes deleted Actors' archives after archiveRetention.
	archive              objstore.Flags
	archiveRetention     time.Duration
	archiveSweepInterval time.Duration
	archiveOrphanGrace   time.Duration
	archiveSettings      *controllers.ArchiveSettings
	// peerTLSPrefix names the peer TLS Secrets (<prefix>-peer-ca,
	// <prefix>-host-peer-tls, <prefix>-gateway-peer-tls); "" keeps none.
	peerTLSPrefix string
	// peerTLSOwner is the manager's Deployment, which owns those Secrets.
	peerTLSOwner string
}

// parse reads the flags; POD_NAMESPACE (downward API) is the default host
// namespace.
func parse(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: manager [flags]

Places Actors on live host pods (found by their Leases), moves them when a
host dies, restarts them per restartPolicy and releases deleted ones once
their host flushed their chain. With --archive-bucket, it removes a deleted
Actor's archive after --archive-retention, and objects no manifest names
(uploads a crash or a fence cut short) after --archive-orphan-grace. Credentials of the archive come
from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the AWS chain. See
docs/operator.md and docs/archive.md.

Flags:
`)
		fs.PrintDefaults()
	}
	hostNS := getenv("POD_NAMESPACE")
	if hostNS == "" {
		hostNS = DefaultHostNamespace
	}
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then the in-cluster config)")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", `address of /metrics ("0" disables it)`)
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", `address of /healthz and /readyz ("0" disables them)`)
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "elect a leader among replicas; only the leader reconciles")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", DefaultLeaderElectionID, "name of the leader election Lease (the RBAC Role names it too)")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the host namespace)")
	fs.StringVar(&o.hostNamespace, "host-namespace", hostNS, "namespace of the host pods and their Leases; defaults to $POD_NAMESPACE when set")
	fs.DurationVar(&o.backoff.Base, "restart-backoff", controllers.DefaultBackoff.Base, "wait before the first restart of a stopped actor; doubles with each restart")
	fs.DurationVar(&o.backoff.Max, "restart-backoff-max", controllers.DefaultBackoff.Max, "longest wait before a restart")
	fs.DurationVar(&o.backoff.Reset, "restart-backoff-reset", controllers.DefaultBackoff.Reset, "an actor that ran this long before it stopped waits only --restart-backoff again")
	fs.DurationVar(&o.flushTimeout, "flush-timeout", controllers.DefaultFlushTimeout, "how long a deleted Actor waits for its live host to report its chain flushed")
	fs.DurationVar(&o.noHostGrace, "no-host-grace", controllers.DefaultNoHostGrace, "how long an actor waits for a host before a NoHost Warning Event says so (a replaced host pod comes back within seconds)")
	fs.IntVar(&o.workers, "workers", controllers.DefaultWorkers, "how many Actors are reconciled at once")
	o.archive.Bind(fs, "archive-", true)
	fs.DurationVar(&o.archiveRetention, "archive-retention", controllers.DefaultArchiveRetention, "how long a deleted Actor's archive is kept before it is removed (0: at once)")
	fs.DurationVar(&o.archiveOrphanGrace, "archive-orphan-grace", controllers.DefaultArchiveOrphanGrace, fmt.Sprintf(
		"how old an object no manifest names must be before the leader removes it, and how long a deleted Actor's tombstone outlives its archive: longer than any upload attempt plus the clock skew with the store (at least %s)", controllers.MinArchiveOrphanGrace))
	fs.DurationVar(&o.archiveSweepInterval, "archive-sweep-interval", controllers.DefaultArchiveSweepInterval, "how often the leader removes the archives past their retention")
	fs.StringVar(&o.peerTLSPrefix, "peer-tls-prefix", "", "keep the peer CA and the hosts' and gateway's certificates in the Secrets <prefix>-peer-ca, <prefix>-host-peer-tls and <prefix>-gateway-peer-tls of the host namespace, rotated before they expire (the leader does); empty: none")
	fs.StringVar(&o.peerTLSOwner, "peer-tls-owner", "", "the manager's Deployment in the host namespace: it owns the peer TLS Secrets, so that deleting it deletes them; empty: they have no owner")
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.hostNamespace == "":
		return nil, errors.New("--host-namespace must not be empty")
	case o.backoff.Base <= 0:
		return nil, fmt.Errorf("--restart-backoff %s: must be positive", o.backoff.Base)
	case o.backoff.Max < o.backoff.Base:
		return nil, fmt.Errorf("--restart-backoff-max %s: must be at least --restart-backoff %s", o.backoff.Max, o.backoff.Base)
	case o.backoff.Reset < 0:
		return nil, fmt.Errorf("--restart-backoff-reset %s: must not be negative", o.backoff.Reset)
	case o.workers < 1:
		return nil, fmt.Errorf("--workers %d: must be at least 1", o.workers)
	case o.flushTimeout <= 0:
		return nil, fmt.Errorf("--flush-timeout %s: must be positive", o.flushTimeout)
	case o.leaderElect && o.leaderElectionID == "":
		return nil, errors.New("--leader-election-id must not be empty with --leader-elect")
	}
	if o.leaderElectionNamespace == "" {
		o.leaderElectionNamespace = o.hostNamespace
	}
	if err := o.parseArchive(getenv); err != nil {
		return nil, err
	}
	return o, nil
}

// parseArchive builds the archive's settings from the --archive-* flags
// and the AWS environment; no bucket and no endpoint: no archive.
func (o *options) parseArchive(getenv func(string) string) error {
	switch {
	case o.archiveRetention < 0:
		return fmt.Errorf("--archive-retention %s: must not be negative", o.archiveRetention)
	case o.archiveSweepInterval <= 0:
		return fmt.Errorf("--archive-sweep-interval %s: must be positive", o.archiveSweepInterval)
	case o.archiveOrphanGrace < controllers.MinArchiveOrphanGrace:
		return fmt.Errorf("--archive-orphan-grace %s: must be at least %s (an upload in flight must never look orphaned)", o.archiveOrphanGrace, controllers.MinArchiveOrphanGrace)
	}
	if !o.archive.Enabled() {
		return nil
	}
	st, cfg, err := o.archive.Open(getenv)
	if err != nil {
		return fmt.Errorf("--archive-*: %w", err)
	}
	o.archiveSettings = &controllers.ArchiveSettings{Store: st, Where: cfg.String(), Retention: o.archiveRetention, SweepInterval: o.archiveSweepInterval,
		OrphanGrace: o.archiveOrphanGrace}
	return nil
}

// newManager builds the manager with the Actor reconciler and its probes,
// through the same controllers.NewManager the test suites use.
func newManager(ctx context.Context, cfg *rest.Config, o *options) (ctrl.Manager, error) {
	return controllers.NewManager(ctx, cfg, ctrl.Options{
		Metrics:                       metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              o.leaderElectionID,
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	}, &controllers.ActorReconciler{
		HostNamespace: o.hostNamespace,
		Backoff:       o.backoff,
		FlushTimeout:  o.flushTimeout,
		NoHostGrace:   o.noHostGrace,
		Workers:       o.workers,
		Archive:       o.archiveSettings,
	})
}

// run parses args and runs the manager until ctx ends. cfg, when not nil,
// replaces the kubeconfig lookup (tests).
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, cfg *rest.Config) error {
	o, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := zap.New(zap.UseFlagOptions(&o.zap), zap.WriteTo(stderr))
	ctrl.SetLogger(log)
	if cfg == nil {
		if cfg, err = cmdutil.RESTConfig(o.kubeconfig); err != nil {
			return fmt.Errorf("connecting to the API server: %w", err)
		}
	}
	mgr, err := newManager(ctx, cfg, o)
	if err != nil {
		return err
	}
	if o.peerTLSPrefix != "" {
		p := o.peerTLSPrefix
		if err := mgr.Add(&peerca.Rotator{
			Client: client.WithFieldOwner(mgr.GetClient(), v1alpha1.ManagerFieldOwner), Reader: mgr.GetAPIReader(),
			Namespace: o.hostNamespace, CASecret: p + "-peer-ca",
			Leaves:          []peerca.Leaf{{Secret: p + "-host-peer-tls", CN: msgwire.HostCN}, {Secret: p + "-gateway-peer-tls", CN: msgwire.GatewayCN}},
			OwnerDeployment: o.peerTLSOwner,
			Log:             log.WithName("peer-ca"),
		}); err != nil {
			return fmt.Errorf("adding the peer CA: %w", err)
		}
	}
	archive := "none"
	if o.archiveSettings != nil {
		archive = o.archiveSettings.Where
	}
	log.Info("starting the manager", "version", version.String(), "hostNamespace", o.hostNamespace,
		"leaderElection", o.leaderElect, "leaderElectionNamespace", o.leaderElectionNamespace, "archive", archive)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	log.Info("manager stopped")
	return nil
}
