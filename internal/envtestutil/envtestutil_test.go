package envtestutil_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// TestStartStop starts a control plane, uses it, and checks that its
// cleanup stops both processes: nothing may outlive the test.
func TestStartStop(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc to find the control plane's processes")
	}
	var started map[int]string
	t.Run("start", func(t *testing.T) {
		env := envtestutil.Start(t)
		started = children(t)
		var names []string
		for _, comm := range started {
			names = append(names, comm)
		}
		joined := strings.Join(names, " ")
		if !strings.Contains(joined, "etcd") || !strings.Contains(joined, "kube-apiserver") {
			t.Fatalf("child processes %v: want etcd and kube-apiserver", started)
		}
		ns := env.Namespace(t)
		if ns == "" {
			t.Fatal("no namespace name")
		}
		// The CRD from config/crd/bases is installed and served.
		var list v1alpha1.ActorList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			t.Fatalf("listing Actors: %v", err)
		}
		if env.Started <= 0 || env.Started > envtestutil.StartTimeout {
			t.Errorf("Started = %s", env.Started)
		}
	})
	// The subtest's cleanup has stopped the control plane; Stop waits for
	// the processes, so they are gone, not merely signalled.
	deadline := time.Now().Add(10 * time.Second)
	for pid, comm := range started {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d) outlived the test", comm, pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := envtestutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Errorf("module root %s has no config/crd/bases: %v", root, err)
	}
}

// children maps the pids of this process's children to their names.
func children(t *testing.T) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	out := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == self {
			out[pid] = s[open+1 : end]
		}
	}
	return out
}

func alive(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}
