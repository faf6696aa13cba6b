//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	theaterv1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// env is what every step of the suite shares: the cluster, the tools and
// the names of what it installs.
type env struct {
	root       string // the repository, for the chart and the samples
	kubeconfig string
	kubectl    string
	helm       string
	imageArgs  []string // helm --set flags naming the image under test
	kube       client.Client
	ns         string // where the sample Actors live
	tmp        string // built samples, helm's own state
}

// Names the chart gives its objects with release troupe (docs/install.md).
const (
	release      = "troupe"
	systemNS     = "troupe-system"
	managerName  = "troupe-manager"
	hostName     = "troupe-host"
	hostMetrics  = "troupe-host-metrics"
	actorCRD     = "actors.theater.troupe.dev"
	sampleNS     = "troupe-e2e"
	leaderLease  = "troupe-manager.theater.troupe.dev"
	hostSelector = "app.kubernetes.io/instance=troupe,app.kubernetes.io/component=host"
)

// The example Actors of config/samples.
var sampleActors = []string{"hello", "monitoring", "structured-logging", "feature-flags"}

// newEnv finds the tools and connects to the cluster. kubectl must be on
// PATH (hack/local-cluster.sh env puts it there); helm is $HELM, helm on
// PATH, or built by hack/build-k8s.sh.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{kubeconfig: os.Getenv("KUBECONFIG"), ns: sampleNS, tmp: t.TempDir()}
	if e.kubeconfig == "" {
		t.Fatal("KUBECONFIG is not set: the e2e suite runs against an existing cluster (make test-e2e-local, hack/e2e-kind.sh)")
	}
	image := os.Getenv("TROUPE_E2E_IMAGE")
	if image == "" {
		t.Skip("TROUPE_E2E_IMAGE is not set: the suite installs the image under test, which must be on the nodes already")
	}
	var err error
	if e.imageArgs, err = helmImageArgs(image); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	e.root = filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(e.root, "charts", "troupe", "Chart.yaml")); err != nil {
		t.Fatalf("the repository root %s has no charts/troupe: %v", e.root, err)
	}
	if e.kubectl, err = exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is not on PATH (eval \"$(hack/local-cluster.sh env)\" puts the cluster's there)")
	}
	e.helm = os.Getenv("HELM")
	if e.helm == "" {
		e.helm, _ = exec.LookPath("helm")
	}
	if e.helm == "" {
		// Cached after the first build (about two minutes).
		out, err := exec.Command(filepath.Join(e.root, "hack", "build-k8s.sh"), "helm").Output()
		if err != nil {
			t.Fatalf("no helm on PATH and hack/build-k8s.sh helm failed: %v", err)
		}
		e.helm = strings.TrimSpace(string(out))
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatalf("loading kubeconfig %s: %v", e.kubeconfig, err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := theaterv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if e.kube, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		t.Fatalf("creating a client for %s: %v", cfg.Host, err)
	}
	return e
}

// helmImageArgs turns an image reference into the chart's image values:
// repository and tag (--set-string: a tag of digits is no number), or
// digest.
func helmImageArgs(ref string) ([]string, error) {
	repo, digest, ok := strings.Cut(ref, "@")
	if ok {
		return []string{"--set", "image.repository=" + repo, "--set-string", "image.digest=" + digest}, nil
	}
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash {
		return nil, fmt.Errorf("TROUPE_E2E_IMAGE %q has no tag: the suite needs the exact image it loaded (never latest)", ref)
	}
	return []string{"--set", "image.repository=" + ref[:colon], "--set-string", "image.tag=" + ref[colon+1:]}, nil
}

// run runs a command with the suite's KUBECONFIG and returns its stdout;
// the error carries its stderr.
func (e *env) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig,
		// helm's caches and repositories stay out of the user's home.
		"HELM_CACHE_HOME="+filepath.Join(e.tmp, "helm", "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(e.tmp, "helm", "config"),
		"HELM_DATA_HOME="+filepath.Join(e.tmp, "helm", "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A killed helm or kubectl must not leave children holding the pipes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err,
			stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (e *env) kubectlCmd(ctx context.Context, args ...string) (string, error) {
	return e.run(ctx, e.kubectl, args...)
}

func (e *env) helmCmd(ctx context.Context, args ...string) (string, error) {
	return e.run(ctx, e.helm, args...)
}

// runOK, kubectlOK and helmOK fail the test when the command fails.
func (e *env) runOK(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := e.run(t.Context(), name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) kubectlOK(t *testing.T, args ...string) string {
	t.Helper()
	return e.runOK(t, e.kubectl, args...)
}

func (e *env) helmOK(t *testing.T, args ...string) string {
	t.Helper()
	return e.runOK(t, e.helm, args...)
}

// dump logs what explains a failure: the Actors, the pods, the manager's
// and the hosts' logs, and recent Events.
func (e *env) dump(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	show := func(title string, args ...string) {
		out, err := e.kubectlCmd(ctx, args...)
		if err != nil {
			out += err.Error()
		}
		t.Logf("--- %s (kubectl %s)\n%s", title, strings.Join(args, " "), out)
	}
	show("actors", "get", "actors", "-A", "-o", "wide")
	show("actor status", "get", "actors", "-A", "-o",
		`custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,PHASE:.status.phase,HOST:.status.hostPod,EPOCH:.status.epoch,RESTARTS:.status.restarts,READY:.status.conditions[?(@.type=="Ready")].reason,MESSAGE:.status.conditions[?(@.type=="Ready")].message,ERROR:.status.lastError`)
	show("pods", "get", "pods", "-A", "-o", "wide")
	show("leases", "get", "leases", "-n", systemNS, "-o", "wide", "--show-labels")
	show("manager log", "logs", "-n", systemNS, "-l", "app.kubernetes.io/component=manager", "--tail=150", "--all-containers", "--prefix")
	show("host log", "logs", "-n", systemNS, "-l", "app.kubernetes.io/component=host", "--tail=200", "--all-containers", "--prefix")
	show("events", "get", "events", "-A", "--sort-by=.lastTimestamp")
}

// step runs one ordered step of the suite as a subtest, dumping the
// cluster's state when it fails. A failed step stops the suite: later
// steps depend on what it left behind.
func (e *env) step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	start := time.Now()
	ok := t.Run(name, func(t *testing.T) {
		t.Cleanup(func() {
			if t.Failed() {
				e.dump(t)
			}
		})
		fn(t)
	})
	t.Logf("step %s: %s (%v)", name, map[bool]string{true: "ok", false: "FAILED"}[ok], time.Since(start).Round(10*time.Millisecond))
	if !ok {
		t.FailNow()
	}
}

// poll calls cond every interval until it reports done, an error, or the
// timeout passes; the failure names what was awaited and the last
// observation cond reported.
func poll(t *testing.T, timeout, interval time.Duration, what string, cond func(ctx context.Context) (done bool, last string, err error)) {
	t.Helper()
	if last, err := waitUntil(t.Context(), timeout, interval, cond); err != nil {
		t.Fatalf("waiting for %s: %v (last: %s)", what, err, last)
	}
}

// waitUntil calls cond every interval until it reports done or an error,
// or the timeout passes, on a context of its own (cleanups run after the
// test's context is done): it returns cond's last observation, and an
// error when cond did not report done within timeout.
func waitUntil(ctx context.Context, timeout, interval time.Duration, cond func(ctx context.Context) (bool, string, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		done, l, err := cond(ctx)
		if l != "" {
			last = l
		}
		if err != nil || done {
			return last, err
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("not within %v", timeout)
		case <-time.After(interval):
		}
	}
}

// portForward runs `kubectl port-forward TARGET :PORT` in namespace ns and
// returns the local address. The process (and its group) is killed when the
// test ends.
func (e *env) portForward(t *testing.T, ns, target string, port int) string {
	t.Helper()
	cmd := exec.Command(e.kubectl, "port-forward", "-n", ns, "--address", "127.0.0.1", target, fmt.Sprintf(":%d", port))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kubectl port-forward %s: %v", target, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	// "Forwarding from 127.0.0.1:43211 -> 8082"
	re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case p := <-found:
		return "127.0.0.1:" + p
	case <-exited:
		t.Fatalf("kubectl port-forward -n %s %s :%d exited: %s", ns, target, port, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl port-forward -n %s %s :%d did not start forwarding within 30s: %s", ns, target, port, stderr.String())
	}
	return ""
}

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer = envtestutil.LockedBuffer

// copyFile copies a small file.
func copyFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// ignoreNotFound is client.IgnoreNotFound for readability in polls.
func ignoreNotFound(err error) error { return client.IgnoreNotFound(err) }
