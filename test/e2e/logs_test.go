//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// logsFollow: `kubectl troupe logs -f` follows structured-logging across a
// restart of its host pod: the log lines of a request made before the
// restart and of one made after it are printed, and no record twice.
func (s *suite) logsFollow(t *testing.T) {
	plugin := filepath.Join(s.tmp, "bin", "kubectl-troupe")
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncBuffer
	// --since, not --tail 0: the request below may reach the actor before
	// the stream is open on its host, and a follower of new lines only
	// would miss its lines.
	cmd := exec.CommandContext(ctx, plugin, "logs", "-n", sampleNS, "structured-logging", "-f", "--since", "10m", "-o", "json")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait(); t.Logf("troupe logs -f stderr:\n%s", errOut.String()) }()
	request := func(tag string) {
		poll(t, 2*time.Minute, time.Second, "a request to structured-logging ("+tag+")", func(ctx context.Context) (bool, string, error) {
			o, err := exec.CommandContext(ctx, plugin, "request", "-n", sampleNS, "structured-logging", "GET /"+tag).CombinedOutput()
			return err == nil, string(o), nil // Moving while the host restarts: again
		})
	}
	shows := func(tag string) {
		poll(t, 2*time.Minute, 500*time.Millisecond, "troupe logs -f shows "+tag, func(context.Context) (bool, string, error) {
			return strings.Contains(out.String(), "/"+tag), out.String(), nil
		})
	}
	request("logs-before-restart")
	shows("logs-before-restart")

	before := s.snapshots(t)
	pod := before["structured-logging"].hostPod
	var moved []string
	for _, name := range sampleActors {
		if before[name].hostPod == pod {
			moved = append(moved, name)
		}
	}
	if err := s.kube.Delete(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: pod}}); err != nil {
		t.Fatalf("deleting host pod %s: %v", pod, err)
	}
	s.readyHostPods(t, []string{pod})
	s.continued(t, before, moved)
	request("logs-after-restart")
	shows("logs-after-restart")

	seen := map[uint64]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("troupe logs -o json printed %q: %v", line, err)
		}
		if seen[r.Seq] {
			t.Errorf("record %d printed twice", r.Seq)
		}
		seen[r.Seq] = true
	}
	if !strings.Contains(errOut.String(), "reconnecting") {
		t.Errorf("troupe logs -f did not reconnect across the restart: %s", errOut.String())
	}
	t.Logf("troupe logs -f printed %d records across the restart of %s", len(seen), pod)
}
