package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/controllers"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

func TestParse(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := map[string]struct {
		args    []string
		getenv  func(string) string
		check   func(*testing.T, *options)
		wantErr string
	}{
		"defaults outside a pod": {
			getenv: env(),
			check: func(t *testing.T, o *options) {
				if o.hostNamespace != DefaultHostNamespace || o.leaderElectionNamespace != DefaultHostNamespace {
					t.Errorf("namespaces %q/%q; want %q", o.hostNamespace, o.leaderElectionNamespace, DefaultHostNamespace)
				}
				if !o.leaderElect || o.leaderElectionID != DefaultLeaderElectionID {
					t.Errorf("leader election %v %q", o.leaderElect, o.leaderElectionID)
				}
				if o.backoff != controllers.DefaultBackoff || o.flushTimeout != controllers.DefaultFlushTimeout {
					t.Errorf("backoff %+v flush %s", o.backoff, o.flushTimeout)
				}
				if o.workers != controllers.DefaultWorkers {
					t.Errorf("workers %d", o.workers)
				}
				if o.metricsAddr != ":8080" || o.probeAddr != ":8081" {
					t.Errorf("addresses %q %q", o.metricsAddr, o.probeAddr)
				}
			},
		},
		"POD_NAMESPACE is the host namespace": {
			getenv: env("POD_NAMESPACE", "troupe"),
			check: func(t *testing.T, o *options) {
				if o.hostNamespace != "troupe" || o.leaderElectionNamespace != "troupe" {
					t.Errorf("namespaces %q/%q; want troupe", o.hostNamespace, o.leaderElectionNamespace)
				}
			},
		},
		"flags win": {
			args: []string{"--host-namespace=hosts", "--leader-election-namespace=le", "--leader-elect=false",
				"--restart-backoff=1s", "--restart-backoff-max=1m", "--restart-backoff-reset=0", "--flush-timeout=30s",
				"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:9999", "--zap-log-level=debug"},
			getenv: env("POD_NAMESPACE", "troupe"),
			check: func(t *testing.T, o *options) {
				if o.hostNamespace != "hosts" || o.leaderElectionNamespace != "le" || o.leaderElect {
					t.Errorf("got %+v", o)
				}
				if (o.backoff != controllers.Backoff{Base: time.Second, Max: time.Minute}) || o.flushTimeout != 30*time.Second {
					t.Errorf("backoff %+v flush %s", o.backoff, o.flushTimeout)
				}
				if o.metricsAddr != "0" || o.probeAddr != "127.0.0.1:9999" {
					t.Errorf("addresses %q %q", o.metricsAddr, o.probeAddr)
				}
			},
		},
		"no archive by default": {getenv: env(), check: func(t *testing.T, o *options) {
			if o.archiveSettings != nil || o.archiveRetention != controllers.DefaultArchiveRetention || o.archiveOrphanGrace != controllers.DefaultArchiveOrphanGrace {
				t.Errorf("archive %+v, retention %s", o.archiveSettings, o.archiveRetention)
			}
		}},
		"archive": {
			args:   []string{"--archive-endpoint=http://store:7070", "--archive-bucket=troupe", "--archive-path-style", "--archive-retention=0", "--archive-sweep-interval=1m", "--archive-orphan-grace=30m"},
			getenv: env("AWS_ACCESS_KEY_ID", "k", "AWS_SECRET_ACCESS_KEY", "s"),
			check: func(t *testing.T, o *options) {
				a := o.archiveSettings
				if a == nil || a.Store == nil || a.Retention != 0 || a.SweepInterval != time.Minute || a.OrphanGrace != 30*time.Minute || a.Where != "s3://troupe/ (endpoint http://store:7070)" {
					t.Errorf("archive %+v", a)
				}
			},
		},
		"negative retention":     {args: []string{"--archive-retention=-1h"}, getenv: env(), wantErr: "--archive-retention -1h0m0s: must not be negative"},
		"short orphan grace":     {args: []string{"--archive-orphan-grace=1m"}, getenv: env(), wantErr: "--archive-orphan-grace 1m0s: must be at least 5m0s"},
		"archive without bucket": {args: []string{"--archive-endpoint=http://store:7070"}, getenv: env(), wantErr: `bucket ""`},
		"empty host namespace":   {args: []string{"--host-namespace="}, getenv: env(), wantErr: "--host-namespace must not be empty"},
		"zero backoff":           {args: []string{"--restart-backoff=0"}, getenv: env(), wantErr: "--restart-backoff 0s: must be positive"},
		"max below base":         {args: []string{"--restart-backoff=1m", "--restart-backoff-max=1s"}, getenv: env(), wantErr: "must be at least --restart-backoff 1m0s"},
		"negative reset":         {args: []string{"--restart-backoff-reset=-1s"}, getenv: env(), wantErr: "must not be negative"},
		"no workers":             {args: []string{"--workers=0"}, getenv: env(), wantErr: "--workers 0: must be at least 1"},
		"zero flush timeout":     {args: []string{"--flush-timeout=0"}, getenv: env(), wantErr: "--flush-timeout 0s: must be positive"},
		"empty leader lease":     {args: []string{"--leader-election-id="}, getenv: env(), wantErr: "--leader-election-id must not be empty"},
		"unknown flag":           {args: []string{"--bogus"}, getenv: env(), wantErr: "flag provided but not defined: -bogus"},
		"positional arguments":   {args: []string{"extra"}, getenv: env(), wantErr: `unexpected arguments ["extra"]`},
		"malformed duration":     {args: []string{"--flush-timeout=soon"}, getenv: env(), wantErr: "invalid value"},
		"unknown zap log level":  {args: []string{"--zap-log-level=loud"}, getenv: env(), wantErr: "invalid value"},
		"leader id without elect": {args: []string{"--leader-elect=false", "--leader-election-id="}, getenv: env(),
			check: func(t *testing.T, o *options) {
				if o.leaderElect {
					t.Error("leader election on")
				}
			}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			o, err := parse(tc.args, tc.getenv, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse = %v; want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v (%s)", err, stderr.String())
			}
			tc.check(t, o)
		})
	}
}

func TestHelp(t *testing.T) {
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &stderr, nil); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: manager", "--host-namespace", "-restart-backoff", "-zap-log-level"} {
		if !strings.Contains(stderr.String(), strings.TrimPrefix(want, "-")) {
			t.Errorf("help lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestManagerRuns runs the binary's run against a control plane, as a
// Deployment would: leader election on, probes and metrics served, and an
// Actor placed on a host.
func TestManagerRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	env := envtestutil.Start(t)
	ns := env.Namespace(t)
	g := gomega.NewWithT(t)
	g.SetDefaultEventuallyTimeout(30 * time.Second)
	g.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)

	probe, metrics := freePort(t), freePort(t)
	ctx := t.Context()
	logs := &envtestutil.LockedBuffer{}
	envtestutil.Run(t, "the manager", envtestutil.StarterFunc(func(ctx context.Context) error {
		return run(ctx, []string{
			"--health-probe-bind-address=" + probe, "--metrics-bind-address=" + metrics,
			"--restart-backoff=1s", "--zap-log-level=debug",
		}, func(k string) string {
			if k == "POD_NAMESPACE" {
				return ns
			}
			return ""
		}, logs, env.Config)
	}), 30*time.Second)

	for _, path := range []string{"/healthz", "/readyz"} {
		g.Eventually(func() (int, error) { return get(t, "http://"+probe+path) }).Should(gomega.Equal(http.StatusOK), path)
	}

	node := env.Node(t, ns+"-node", nil)
	env.HostLease(t, ns, "host-x", node.Name, 0, time.Hour)
	g.Expect(env.Client.Create(ctx, &v1alpha1.Actor{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: ns},
		Spec:       v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{Image: "registry.example/hello:v1"}},
	})).To(gomega.Succeed())
	g.Eventually(func() (string, error) {
		var a v1alpha1.Actor
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "hello"}, &a)
		return a.Status.HostPod, err
	}).Should(gomega.Equal("host-x"))

	// The leader holds its Lease beside the hosts' without being taken
	// for one.
	var leader coordinationv1.Lease
	g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: DefaultLeaderElectionID}, &leader)).To(gomega.Succeed())
	g.Eventually(func() (string, error) {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}).Should(gomega.ContainSubstring(`controller_runtime_reconcile_total{controller="actor",result="success"}`))
	g.Expect(logs.String()).To(gomega.ContainSubstring("starting the manager"))
}

func get(t *testing.T, url string) (int, error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// freePort is a loopback address nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}
