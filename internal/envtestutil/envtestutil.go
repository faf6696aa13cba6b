package envtestutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/troupe-dev/troupe/internal/kubescheme"
)

// StartTimeout bounds the start of each control-plane process. Envtest's
// default (20s) is too tight for a shared two-core machine under load; the
// control plane usually starts in 3-4 s.
const StartTimeout = 60 * time.Second

// StopTimeout bounds the stop of each control-plane process.
const StopTimeout = 30 * time.Second

// Env is a running control plane: a kube-apiserver and etcd of their own,
// with Troupe's CRDs installed.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a controller-runtime client (no cache) with Scheme.
	Client client.Client
	// Scheme knows the built-in kinds and theater.troupe.dev/v1alpha1
	// (kubescheme.New, as the binaries').
	Scheme *runtime.Scheme
	// Environment is the underlying envtest environment.
	Environment *envtest.Environment
	// Assets is the directory the binaries came from.
	Assets string
	// Started is how long the control plane took to start and install
	// the CRDs.
	Started time.Duration
}

// Options change what Start starts; the zero value is what most suites want.
type Options struct {
	// CRDDirs are extra directories of CRD manifests to install, besides
	// config/crd/bases.
	CRDDirs []string
	// APIServerFlags are extra kube-apiserver flags, name to value.
	APIServerFlags map[string]string
	// Logger receives controller-runtime's logs. The first Start of the
	// process sets it; by default logs are dropped unless TROUPE_TEST_LOG
	// is set, then they go to stderr.
	Logger *logr.Logger
}

// Start starts a control plane for t and stops it when t's cleanup runs.
// It fails t when the control plane does not start.
func Start(t testing.TB) *Env { return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Env {
	t.Helper()
	setLoggerOnce(opts.Logger)
	root, err := ModuleRoot()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	assets, err := Assets(root)
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	scheme, err := kubescheme.New()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:        append([]string{filepath.Join(root, "config", "crd", "bases")}, opts.CRDDirs...),
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: StartTimeout,
		ControlPlaneStopTimeout:  StopTimeout,
	}
	api := env.ControlPlane.GetAPIServer()
	for name, value := range opts.APIServerFlags {
		api.Configure().Set(name, value)
	}
	if os.Getenv("TROUPE_ENVTEST_OUTPUT") != "" {
		// The processes' own logs, to see why a start is slow or fails.
		env.ControlPlane.Etcd = &envtest.Etcd{Out: os.Stderr, Err: os.Stderr}
		api.Out, api.Err = os.Stderr, os.Stderr
	}
	begin := time.Now()
	cfg, err := env.Start()
	if err != nil {
		// A failed start may leave one of the two processes running.
		_ = env.Stop()
		t.Fatalf("envtest: starting the control plane from %s: %v", assets, err)
	}
	started := time.Since(begin)
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("envtest: stopping the control plane: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("envtest: client: %v", err)
	}
	t.Logf("envtest: control plane started in %s (assets %s)", started.Round(time.Millisecond), assets)
	return &Env{Config: cfg, Client: c, Scheme: scheme, Environment: env, Assets: assets, Started: started}
}

// Namespace creates a namespace with a generated name for t and returns its
// name. Envtest has no namespace controller, so it is not deleted: suites
// that share one control plane keep tests apart with it.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{}
	ns.GenerateName = "test-"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatalf("envtest: creating a namespace: %v", err)
	}
	return ns.Name
}

// ModuleRoot is the directory of the go.mod above the working directory
// (go test runs each package in its own directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

var assetsOnce struct {
	sync.Mutex
	dir string
}

// Assets is the directory holding kube-apiserver and etcd: KUBEBUILDER_ASSETS
// when set (make test sets it), else what hack/setup-envtest.sh prints, which
// builds the binaries the first time (minutes) and is instant afterwards.
func Assets(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	assetsOnce.Lock()
	defer assetsOnce.Unlock()
	if assetsOnce.dir != "" {
		return assetsOnce.dir, nil
	}
	cmd := exec.Command(filepath.Join(root, "hack", "setup-envtest.sh"))
	cmd.Dir = root
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("KUBEBUILDER_ASSETS is unset and hack/setup-envtest.sh failed: %w", err)
	}
	dir := strings.TrimSpace(stdout.String())
	if dir == "" {
		return "", errors.New("KUBEBUILDER_ASSETS is unset and hack/setup-envtest.sh printed no directory")
	}
	assetsOnce.dir = dir
	return dir, nil
}

var loggerOnce sync.Once

// setLoggerOnce gives controller-runtime a logger, which it otherwise asks
// for with a stack trace.
func setLoggerOnce(l *logr.Logger) {
	loggerOnce.Do(func() {
		switch {
		case l != nil:
			ctrllog.SetLogger(*l)
		case os.Getenv("TROUPE_TEST_LOG") != "":
			ctrllog.SetLogger(funcr.New(func(prefix, args string) {
				fmt.Fprintln(os.Stderr, prefix, args)
			}, funcr.Options{Verbosity: 1}))
		default:
			ctrllog.SetLogger(logr.Discard())
		}
	})
}
