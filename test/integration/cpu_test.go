package integration

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// cpuSplit is the CPU time (user + system) used so far by this process
// (the manager, the hosts and the test) and by its envtest children, the
// API server and etcd: what a burst costs each, to read its latency
// against two shared cores. Zero where /proc is not there.
type cpuSplit struct {
	self, apiserver, etcd time.Duration
}

func (a cpuSplit) minus(b cpuSplit) cpuSplit {
	return cpuSplit{self: a.self - b.self, apiserver: a.apiserver - b.apiserver, etcd: a.etcd - b.etcd}
}

func (a cpuSplit) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	return fmt.Sprintf("kube-apiserver %s, etcd %s, the manager+hosts+test process %s (total %s)",
		r(a.apiserver), r(a.etcd), r(a.self), r(a.apiserver+a.etcd+a.self))
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux this runs on.
const clockTick = 100

// readCPUSplit reads /proc: this process, and its children named
// kube-apiserver and etcd.
func readCPUSplit() cpuSplit {
	var s cpuSplit
	self := os.Getpid()
	s.self, _, _ = procStat(self)
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == self {
			continue
		}
		cpu, ppid, comm := procStat(pid)
		if ppid != self {
			continue
		}
		switch {
		case strings.Contains(comm, "kube-apiserver"):
			s.apiserver += cpu
		case strings.Contains(comm, "etcd"):
			s.etcd += cpu
		}
	}
	return s
}

// procStat returns pid's utime+stime, its parent and its name.
func procStat(pid int) (time.Duration, int, string) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, ""
	}
	// pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces.
	open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || end < open {
		return 0, 0, ""
	}
	comm := string(raw[open+1 : end])
	f := strings.Fields(string(raw[end+1:]))
	if len(f) < 13 {
		return 0, 0, ""
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTick, ppid, comm
}

// burstProfiles, when TROUPE_SCALE_PPROF names a directory, takes CPU
// profiles of a burst: of this process (manager, hosts, test) and of the
// API server (its /debug/pprof, for seconds), written there as
// <name>-self.pprof and <name>-apiserver.pprof. The returned func ends
// them; it is a no-op without TROUPE_SCALE_PPROF.
func burstProfiles(t *testing.T, cfg *rest.Config, name string, seconds int) func() {
	dir := os.Getenv("TROUPE_SCALE_PPROF")
	if dir == "" {
		return func() {}
	}
	self, err := os.Create(filepath.Join(dir, name+"-self.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(self); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Errorf("API server profile: %v", err)
			return
		}
		resp, err := hc.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(cfg.Host, "/"), seconds))
		if err != nil {
			t.Errorf("API server profile: %v", err)
			return
		}
		defer resp.Body.Close()
		out, err := os.Create(filepath.Join(dir, name+"-apiserver.pprof"))
		if err != nil {
			t.Errorf("API server profile: %v", err)
			return
		}
		defer out.Close()
		if _, err := io.Copy(out, io.LimitReader(resp.Body, 256<<20)); err != nil {
			t.Errorf("API server profile: %v", err)
		}
	}()
	return func() {
		pprof.StopCPUProfile()
		self.Close()
		<-done
	}
}
