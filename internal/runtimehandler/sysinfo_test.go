package runtimehandler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingSource counts readings; when gate is non-nil each reading waits
// for it, so a test can hold a reading in flight.
type countingSource struct {
	n       atomic.Int32
	gate    chan struct{}
	started chan struct{}
	err     error
}

func (s *countingSource) SystemInfo(ctx context.Context) (SystemInfo, error) {
	n := s.n.Add(1)
	if s.started != nil {
		s.started <- struct{}{}
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return SystemInfo{}, ctx.Err()
		}
	}
	return SystemInfo{Uptime: uint64(n)}, s.err
}

func TestCachedSystemInfoTTL(t *testing.T) {
	src := &countingSource{}
	now := time.Unix(1000, 0)
	c := NewCachedSystemInfo(src, time.Second, func() time.Time { return now })
	ctx := context.Background()
	read := func() uint64 {
		info, err := c.SystemInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.Uptime
	}
	first, second := read(), read()
	if first != 1 || second != 1 {
		t.Fatal("second read within the ttl was not cached")
	}
	now = now.Add(999 * time.Millisecond)
	if read() != 1 {
		t.Fatal("read just inside the ttl re-read")
	}
	now = now.Add(time.Millisecond)
	if read() != 2 {
		t.Fatal("read at the ttl did not re-read")
	}
}

func TestCachedSystemInfoCachesErrors(t *testing.T) {
	src := &countingSource{err: errors.New("no /proc")}
	c := NewCachedSystemInfo(src, time.Minute, nil)
	for i := 0; i < 3; i++ {
		info, err := c.SystemInfo(context.Background())
		if err == nil || info.Uptime != 1 {
			t.Fatalf("got %+v, %v", info, err)
		}
	}
	if n := src.n.Load(); n != 1 {
		t.Fatalf("a failing source was read %d times within the ttl", n)
	}
}

func TestCachedSystemInfoSingleFlight(t *testing.T) {
	src := &countingSource{gate: make(chan struct{}), started: make(chan struct{}, 1)}
	c := NewCachedSystemInfo(src, time.Minute, nil)
	const callers = 20
	var wg sync.WaitGroup
	results := make(chan SystemInfo, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := c.SystemInfo(context.Background())
			if err != nil {
				t.Error(err)
			}
			results <- info
		}()
	}
	<-src.started // one reading is in flight
	// Hold it until every other caller waits for it.
	cached := c.(*cachedSystemInfo)
	for deadline := time.Now().Add(10 * time.Second); ; {
		cached.mu.Lock()
		w := cached.waiters
		cached.mu.Unlock()
		if w == callers-1 {
			break
		}
		if n := src.n.Load(); n > 1 || time.Now().After(deadline) {
			t.Fatalf("%d readings started, %d callers waiting", n, w)
		}
		time.Sleep(time.Millisecond)
	}
	close(src.gate)
	wg.Wait()
	close(results)
	for info := range results {
		if info.Uptime != 1 {
			t.Fatalf("a caller got reading %d", info.Uptime)
		}
	}
	if n := src.n.Load(); n != 1 {
		t.Fatalf("%d readings for a burst of %d callers", n, callers)
	}
}

func TestCachedSystemInfoWaiterCancelled(t *testing.T) {
	src := &countingSource{gate: make(chan struct{}), started: make(chan struct{}, 1)}
	c := NewCachedSystemInfo(src, time.Minute, nil)
	leaderDone := make(chan error, 1)
	go func() {
		_, err := c.SystemInfo(context.Background())
		leaderDone <- err
	}()
	<-src.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.SystemInfo(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled waiter got %v", err)
	}
	close(src.gate)
	if err := <-leaderDone; err != nil {
		t.Fatal(err)
	}
}

func TestCachedSystemInfoLeaderCancelledIsNotCached(t *testing.T) {
	src := &countingSource{gate: make(chan struct{}), started: make(chan struct{}, 1)}
	c := NewCachedSystemInfo(src, time.Minute, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.SystemInfo(ctx)
		done <- err
	}()
	<-src.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	close(src.gate)
	info, err := c.SystemInfo(context.Background())
	if err != nil || info.Uptime != 2 {
		t.Fatalf("after a cancelled reading: %+v, %v (want a fresh reading)", info, err)
	}
}

type panickingSource struct{}

func (panickingSource) SystemInfo(context.Context) (SystemInfo, error) { panic("boom") }

func TestCachedSystemInfoSourcePanics(t *testing.T) {
	c := NewCachedSystemInfo(panickingSource{}, time.Minute, nil)
	if _, err := c.SystemInfo(context.Background()); err == nil || !strings.Contains(err.Error(), "panicked: boom") {
		t.Fatalf("got %v", err)
	}
}

// HOST_PROC points gopsutil at another /proc: a host pod reads the node's.
func TestNodeSystemInfoHonoursHostProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("gopsutil reads /proc only on Linux")
	}
	proc := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(proc, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var cpuinfo strings.Builder
	for i := 0; i < 7; i++ {
		cpuinfo.WriteString("processor\t: " + string(rune('0'+i)) + "\nmodel name\t: Fake CPU\n\n")
	}
	write("cpuinfo", cpuinfo.String())
	write("meminfo", "MemTotal:       2048 kB\nMemFree:         512 kB\nMemAvailable:   1024 kB\nBuffers: 0 kB\nCached: 0 kB\n")
	t.Setenv("HOST_PROC", proc)

	info, err := NewNodeSystemInfo("node-a", time.Minute).SystemInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Hostname != "node-a" || info.OSType != "linux" || info.CPUCount != 7 ||
		info.MemoryTotal != 2048*1024 || info.MemoryAvailable != 1024*1024 {
		t.Fatalf("got %+v", info)
	}
	if info.OSRelease == "" || info.Uptime == 0 {
		t.Fatalf("kernel release or uptime missing: %+v", info)
	}
}

func TestNodeSystemInfoPartialOnError(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("gopsutil reads /proc only on Linux")
	}
	t.Setenv("HOST_PROC", filepath.Join(t.TempDir(), "missing"))
	info, err := NewNodeSystemInfo("", time.Minute).SystemInfo(context.Background())
	if err == nil || !strings.Contains(err.Error(), "memory:") {
		t.Fatalf("want a memory error, got %v", err)
	}
	host, _ := os.Hostname()
	if info.Hostname != host || info.OSType != "linux" || info.MemoryTotal != 0 {
		t.Fatalf("best effort fields wrong: %+v", info)
	}
}

func TestNodeSystemInfoReal(t *testing.T) {
	info, err := NewNodeSystemInfo("", 0).SystemInfo(context.Background())
	if runtime.GOOS == "linux" && err != nil {
		t.Fatal(err)
	}
	if info.CPUCount == 0 || info.MemoryTotal == 0 || info.MemoryAvailable > info.MemoryTotal {
		t.Fatalf("implausible: %+v", info)
	}
}
