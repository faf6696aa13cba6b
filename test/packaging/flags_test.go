package packaging_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/troupe-dev/troupe/internal/testutil"
)

// TestContainerArgsParse runs /manager and /host with the exact args each
// install gives them: a misspelt flag or a value of the wrong type would
// crash-loop the pods. The binaries are pointed at a kubeconfig that does
// not exist, so that each stops right after parsing its flags, when it
// first needs the API server.
func TestContainerArgsParse(t *testing.T) {
	bin := t.TempDir()
	if _, err := run(t, nil, "go", "build", "-o", bin+"/", "./cmd/manager", "./cmd/host", "./cmd/gateway"); err != nil {
		t.Fatal(err)
	}
	installs := map[string]func(t *testing.T) manifest{
		"chart defaults":           func(t *testing.T) manifest { return renderChart(t, "") },
		"chart non-default values": func(t *testing.T) manifest { return renderChart(t, nonDefaultValues) },
		"chart with the archive":   func(t *testing.T) manifest { return renderChart(t, "", archiveSets...) },
		"chart with the gateway":   func(t *testing.T) manifest { return renderChart(t, nonDefaultValues, "gateway.enabled=true") },
		"config/default":           func(t *testing.T) manifest { return kustomize(t, "config/default") },
		"config/confined":          func(t *testing.T) manifest { return kustomize(t, "config/confined") },
	}
	for name, render := range installs {
		t.Run(name, func(t *testing.T) {
			m := render(t)
			d, ds := deployment(t, m), daemonSet(t, m)
			cs := []*corev1.Container{container(t, &d.Spec.Template.Spec, "manager"), container(t, &ds.Spec.Template.Spec, "host")}
			if gw := m.get("Deployment", gatewayName(m)); gw != nil {
				cs = append(cs, container(t, &typed[appsv1.Deployment](t, gw).Spec.Template.Spec, "gateway"))
			}
			for _, c := range cs {
				checkArgsParse(t, filepath.Join(bin, strings.TrimPrefix(c.Command[0], "/")), c.Args)
			}
		})
	}
}

func checkArgsParse(t *testing.T, binary string, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kubeconfig := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	cmd := exec.CommandContext(ctx, binary, append(args, "--kubeconfig="+kubeconfig)...)
	// What the downward API gives the host.
	cmd.Env = []string{"NODE_NAME=node-a", "POD_NAME=troupe-host-abcde", "POD_NAMESPACE=" + namespace, "HOST_PROC=/proc"}
	cmd.Dir = testutil.RepoRoot(t)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("%s %q: %v, want it to stop for want of an API server\n%s", filepath.Base(binary), args, err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "connecting to the API server") || !strings.Contains(stderr.String(), kubeconfig) {
		t.Errorf("%s rejects its args %q:\n%s", filepath.Base(binary), args, stderr.String())
	}
}
