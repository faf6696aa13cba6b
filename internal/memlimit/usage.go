package memlimit

import (
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
)

// ResidentBytes returns the process's resident set size (/proc/self/statm),
// what the kernel charges it for in RAM. ok is false where there is no
// /proc.
func ResidentBytes() (n uint64, ok bool, err error) {
	b, err := os.ReadFile("/proc/self/statm")
	if os.IsNotExist(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading /proc/self/statm: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false, fmt.Errorf("reading /proc/self/statm: %q", b)
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("reading /proc/self/statm: %w", err)
	}
	return pages * uint64(os.Getpagesize()), true, nil
}

// GoMemory is what the Go runtime holds, from runtime/metrics.
type GoMemory struct {
	// Mapped is every byte the runtime mapped and has not released to the
	// OS: heap (live and garbage), stacks, its own metadata.
	Mapped uint64
	// HeapLive is the heap the last GC found live.
	HeapLive uint64
	// HeapInUse is the heap in use now, live and not yet collected.
	HeapInUse uint64
}

var goSamples = []string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
}

// ReadGo reads the Go runtime's figures; cheap (no stop of the world).
func ReadGo() GoMemory {
	s := make([]metrics.Sample, len(goSamples))
	for i, name := range goSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	var g GoMemory
	if total, released := v(0), v(1); total > released {
		g.Mapped = total - released
	}
	g.HeapLive, g.HeapInUse = v(2), v(3)
	return g
}
