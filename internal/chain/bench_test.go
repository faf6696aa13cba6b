package chain

import (
	"bytes"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time. The machine the benchmarks
// run on is shared, so wall-clock ns/op is inflated by other load; CPU time
// per event says what one core can do.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates adds events/s (wall clock) and events/cpu-s to b's results.
func reportRates(b *testing.B, events int, cpuStart time.Duration) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpuStart; cpu > 0 {
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	}
}

var benchSizes = []int{100, 4096}

// BenchmarkAppendMemory: the in-memory hot path. A bounded ring keeps
// memory flat whatever b.N is; "keep all" measures the unbounded store.
func BenchmarkAppendMemory(b *testing.B) {
	for _, size := range benchSizes {
		for _, retain := range []int{1024, 0} {
			if retain == 0 && size > 100 {
				continue // b.N events of 4 KiB each would not fit the shared machine
			}
			name := fmt.Sprintf("%dB/retain=%d", size, retain)
			b.Run(name, func(b *testing.B) {
				c := NewMemory(Options{Retain: retain})
				data := bytes.Repeat([]byte("x"), size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					if _, err := c.Append(KindCustom, "record-event", data); err != nil {
						b.Fatal(err)
					}
				}
				reportRates(b, b.N, cpu)
			})
		}
	}
}

func benchDurable(b *testing.B, d Durability) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			c, _, err := Open(filepath.Join(b.TempDir(), FileName), Options{Durability: d})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			data := bytes.Repeat([]byte("x"), size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := c.Append(KindCustom, "record-event", data); err != nil {
					b.Fatal(err)
				}
			}
			// Everything appended is on disk before the clock stops.
			if err := c.Sync(); err != nil {
				b.Fatal(err)
			}
			reportRates(b, b.N, cpu)
		})
	}
}

// BenchmarkAppendGroupCommit: durable appends, fsync every 20 ms.
func BenchmarkAppendGroupCommit(b *testing.B) { benchDurable(b, GroupCommit) }

// BenchmarkAppendSync: an fsync before every append returns.
func BenchmarkAppendSync(b *testing.B) { benchDurable(b, Sync) }

// BenchmarkVerify: verification throughput of a chain file.
func BenchmarkVerify(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), FileName)
			c, _, err := Open(path, Options{SyncInterval: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			const n = 20000
			data := bytes.Repeat([]byte("x"), size)
			for range n {
				if _, err := c.Append(KindCustom, "record-event", data); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				rep, err := VerifyFile(path)
				if err != nil || !rep.OK() || rep.Events != n {
					b.Fatalf("%+v %v", rep, err)
				}
			}
			reportRates(b, b.N*n, cpu)
		})
	}
}
