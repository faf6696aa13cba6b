package runtimehandler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
)

// SystemInfo is the WIT record system-info: facts about the node.
type SystemInfo struct {
	Hostname  string
	OSType    string
	OSRelease string
	CPUCount  uint32
	// MemoryTotal and MemoryAvailable are in bytes.
	MemoryTotal, MemoryAvailable uint64
	// Uptime is in seconds.
	Uptime uint64
}

// SystemInfoSource reports the node's facts. It may return partial facts
// with an error; get-system-info serves what it got and records the error.
// Implementations must be safe for concurrent use.
type SystemInfoSource interface {
	SystemInfo(ctx context.Context) (SystemInfo, error)
}

// DefaultSystemInfoTTL is how long NewNodeSystemInfo reuses a reading when
// given a ttl <= 0: short enough that memory-available is fresh, long
// enough that a burst of calls from many actors reads /proc once.
const DefaultSystemInfoTTL = time.Second

// NewNodeSystemInfo reads the node's facts with gopsutil, which honours
// HOST_PROC: a host pod that mounts the node's /proc at /node/proc and sets
// HOST_PROC=/node/proc reports the node's memory and CPUs, not its own
// cgroup's view. hostname is what to report as the hostname, normally the
// node name from the downward API (a pod's own hostname is the pod's);
// "" uses os.Hostname. Readings are cached for ttl and concurrent callers
// share one reading.
func NewNodeSystemInfo(hostname string, ttl time.Duration) SystemInfoSource {
	if ttl <= 0 {
		ttl = DefaultSystemInfoTTL
	}
	return NewCachedSystemInfo(nodeReader{hostname: hostname}, ttl, nil)
}

// nodeReader reads each fact independently, so one unreadable file costs one
// field, not the record.
type nodeReader struct{ hostname string }

func (r nodeReader) SystemInfo(ctx context.Context) (SystemInfo, error) {
	info := SystemInfo{Hostname: r.hostname, OSType: runtime.GOOS}
	var errs []error
	if info.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			errs = append(errs, fmt.Errorf("hostname: %w", err))
		}
		info.Hostname = h
	}
	if v, err := host.KernelVersionWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("kernel release: %w", err))
	} else {
		info.OSRelease = v
	}
	if n, err := cpu.CountsWithContext(ctx, true); err != nil {
		errs = append(errs, fmt.Errorf("cpu count: %w", err))
	} else if n > 0 {
		info.CPUCount = uint32(min(n, 1<<31))
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("memory: %w", err))
	} else {
		info.MemoryTotal, info.MemoryAvailable = vm.Total, vm.Available
	}
	if up, err := host.UptimeWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("uptime: %w", err))
	} else {
		info.Uptime = up
	}
	return info, errors.Join(errs...)
}

// NewCachedSystemInfo wraps src with a cache: a reading (and its error) is
// reused for ttl, and while one caller reads, the others wait for its
// result instead of reading too (single flight). now is the clock, nil for
// time.Now.
func NewCachedSystemInfo(src SystemInfoSource, ttl time.Duration, now func() time.Time) SystemInfoSource {
	if now == nil {
		now = time.Now
	}
	return &cachedSystemInfo{src: src, ttl: ttl, now: now}
}

type cachedSystemInfo struct {
	src SystemInfoSource
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	valid    bool
	at       time.Time
	info     SystemInfo
	err      error
	inflight chan struct{} // closed when the reading in flight is stored
	waiters  int           // callers waiting for it (observed by tests)
}

func (c *cachedSystemInfo) SystemInfo(ctx context.Context) (SystemInfo, error) {
	c.mu.Lock()
	for {
		if c.valid && c.now().Sub(c.at) < c.ttl {
			info, err := c.info, c.err
			c.mu.Unlock()
			return info, err
		}
		if c.inflight == nil {
			break
		}
		wait := c.inflight
		c.waiters++
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			c.mu.Lock()
			c.waiters--
			c.mu.Unlock()
			return SystemInfo{}, fmt.Errorf("waiting for system info: %w", ctx.Err())
		}
		c.mu.Lock()
		c.waiters--
	}
	done := make(chan struct{})
	c.inflight = done
	c.mu.Unlock()

	info, err := c.read(ctx)

	c.mu.Lock()
	// A reading cut short by the caller's own deadline says nothing about
	// the node: don't let it answer everyone else for a whole ttl.
	if err == nil || ctx.Err() == nil {
		c.valid, c.at, c.info, c.err = true, c.now(), info, err
	}
	c.inflight = nil
	close(done)
	c.mu.Unlock()
	return info, err
}

// read calls the source, turning a panic into an error so that waiters are
// always released.
func (c *cachedSystemInfo) read(ctx context.Context) (info SystemInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			info, err = SystemInfo{}, fmt.Errorf("system info source panicked: %v", r)
		}
	}()
	return c.src.SystemInfo(ctx)
}
