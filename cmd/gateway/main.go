package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"

	"github.com/troupe-dev/troupe/internal/cmdutil"
	"github.com/troupe-dev/troupe/internal/gateway"
	"github.com/troupe-dev/troupe/internal/version"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// options are the command line's settings.
type options struct {
	kubeconfig      string
	bindAddress     string
	metricsAddress  string
	tlsCertFile     string
	tlsKeyFile      string
	decisionTTL     time.Duration
	maxTimeout      time.Duration
	qps             float64
	logLevel        string
	logFormat       string
	peer            peerFlags
	shutdownTimeout time.Duration
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: gateway [flags]

Serves the aggregated API gateway.troupe.dev/v1alpha1 (APIService
v1alpha1.gateway.troupe.dev): POST
/apis/gateway.troupe.dev/v1alpha1/namespaces/NS/actors/NAME/request|send.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, or $KUBECONFIG)")
	fs.StringVar(&o.bindAddress, "bind-address", ":8443", "address of the HTTPS API (and /healthz, /readyz)")
	fs.StringVar(&o.metricsAddress, "metrics-bind-address", ":8080", `address of /metrics over plain HTTP ("0" disables it)`)
	fs.StringVar(&o.tlsCertFile, "tls-cert-file", "/etc/troupe/serving/tls.crt", "serving certificate (PEM), re-read when it changes")
	fs.StringVar(&o.tlsKeyFile, "tls-key-file", "/etc/troupe/serving/tls.key", "serving certificate's key (PEM)")
	fs.DurationVar(&o.decisionTTL, "authorization-cache-ttl", gateway.DefaultDecisionTTL, "how long an allow or deny decision is kept (0: ask the API server for every message)")
	fs.DurationVar(&o.maxTimeout, "max-request-timeout", gateway.DefaultMaxTimeout, "the longest a request waits for its answer")
	fs.Float64Var(&o.qps, "kube-api-qps", 50, "queries per second to the API server (SubjectAccessReviews)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info or error")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or text")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long requests in flight may finish on SIGTERM")
	o.peer.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.decisionTTL < 0 || o.maxTimeout <= 0 || o.qps <= 0 {
		return nil, errors.New("--authorization-cache-ttl must not be negative, --max-request-timeout and --kube-api-qps must be positive")
	}
	return o, nil
}

func run(args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := cmdutil.NewLogger(o.logLevel, o.logFormat, stderr)
	if err != nil {
		return err
	}
	log.Info("starting", "version", version.String())
	cfg, err := cmdutil.RESTConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(o.qps), int(2*o.qps)
	cfg.UserAgent = "troupe-gateway/" + version.String()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	tlsCfg, err := gateway.ServingTLS(o.tlsCertFile, o.tlsKeyFile)
	if err != nil {
		return err
	}
	authn := gateway.NewAuthenticator()
	if err := gateway.WatchAuthConfig(ctx, cs, authn, log.WithName("authn")); err != nil {
		return err
	}
	authz := gateway.NewAuthorizer(cs.AuthorizationV1().SubjectAccessReviews())
	authz.AllowTTL, authz.DenyTTL = o.decisionTTL, o.decisionTTL
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	deliverer, ready, err := newDeliverer(ctx, cfg, o, getenv, log.WithName("route"))
	if err != nil {
		return err
	}
	// The router that delivers also opens the actors' log streams.
	logs, _ := deliverer.(gateway.LogSource)
	srv := &gateway.Server{
		Authn: authn, Authz: authz, Deliverer: deliverer, LogSource: logs, Log: log.WithName("gateway"),
		Metrics: gateway.NewMetrics(reg), MaxTimeout: o.maxTimeout, Ready: ready,
	}
	api := &http.Server{
		Addr: o.bindAddress, Handler: srv.Handler(), TLSConfig: tlsCfg,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 2)
	go func() { errc <- serve("API", api.ListenAndServeTLS("", "")) }()
	var metrics *http.Server
	if o.metricsAddress != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		metrics = &http.Server{Addr: o.metricsAddress, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- serve("metrics", metrics.ListenAndServe()) }()
	}
	log.Info("serving", "address", o.bindAddress, "metrics", o.metricsAddress)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if serr := api.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = fmt.Errorf("stopping the API server: %w", serr)
	}
	if metrics != nil {
		_ = metrics.Shutdown(shutdownCtx)
	}
	log.Info("stopped")
	return err
}

func serve(what string, err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serving the %s: %w", what, err)
}
