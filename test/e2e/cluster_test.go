//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// clientset connects to the cluster KUBECONFIG names, the only input the
// suite takes besides TROUPE_E2E_IMAGE.
func clientset(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		t.Fatal("KUBECONFIG is not set: the e2e suite runs against an existing cluster (make test-e2e-local, hack/e2e-kind.sh)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("loading kubeconfig %s: %v", path, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("creating a client for %s: %v", cfg.Host, err)
	}
	return cs
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestClusterReachable checks the suite's precondition: the API server
// answers and a node is Ready to run pods.
func TestClusterReachable(t *testing.T) {
	cs := clientset(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var last string
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		var names []string
		for i := range nodes.Items {
			if nodeReady(&nodes.Items[i]) {
				t.Logf("node %s is Ready (kubelet %s)", nodes.Items[i].Name, nodes.Items[i].Status.NodeInfo.KubeletVersion)
				return true, nil
			}
			names = append(names, nodes.Items[i].Name)
		}
		last = fmt.Sprintf("no Ready node among %v", names)
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for a Ready node: %v (last: %s)", err, last)
	}
}

// TestImageRuns starts a pod from the image under test, which must already
// be on the node (it is never pulled), and checks that its troupe binary runs
// as the image's non-root user and reports the build's version
// (TROUPE_E2E_VERSION, when set).
func TestImageRuns(t *testing.T) {
	image := os.Getenv("TROUPE_E2E_IMAGE")
	if image == "" {
		t.Skip("TROUPE_E2E_IMAGE is not set")
	}
	cs := clientset(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "troupe-e2e-image-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is done by now; the namespace must still go.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Logf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	// The default ServiceAccount appears shortly after its namespace; a pod
	// created before it is refused.
	if err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("waiting for the default ServiceAccount of %s: %v", ns.Name, err)
	}

	pod, err := cs.CoreV1().Pods(ns.Name).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "troupe-version"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:            "troupe",
				Image:           image,
				ImagePullPolicy: corev1.PullNever,
				Command:         []string{"/troupe", "version"},
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot:             ptr(true),
					AllowPrivilegeEscalation: ptr(false),
					ReadOnlyRootFilesystem:   ptr(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a pod from %s: %v", image, err)
	}
	var phase corev1.PodPhase
	var why string
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns.Name).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase = p.Status.Phase
		for _, s := range p.Status.ContainerStatuses {
			if w := s.State.Waiting; w != nil && w.Reason != "ContainerCreating" {
				why = w.Reason + ": " + w.Message
			}
		}
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	if err != nil {
		t.Fatalf("pod from %s did not finish: %v (phase %q, %s)", image, err, phase, why)
	}
	raw, err := cs.CoreV1().Pods(ns.Name).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading the pod's logs: %v", err)
	}
	out := string(bytes.TrimSpace(raw))
	if phase != corev1.PodSucceeded {
		t.Fatalf("`troupe version` in %s ended %s; output: %q", image, phase, out)
	}
	// The image carries the build that TROUPE_E2E_VERSION names.
	if want := os.Getenv("TROUPE_E2E_VERSION"); want != "" && out != want {
		t.Errorf("`troupe version` in %s printed %q, want %q", image, out, want)
	}
	t.Logf("%s: troupe version: %s", image, out)
}

func ptr[T any](v T) *T { return &v }
