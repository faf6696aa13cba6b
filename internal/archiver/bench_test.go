package archiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/limits"
)

// What the shipper costs an actor between uploads: the scan's look at
// it (due), against reading the chain's head, which the host's status
// poller does anyway.
func BenchmarkShipperScan(b *testing.B) {
	a, s := benchShipper(b, time.Hour)
	b.Run("head", func(b *testing.B) {
		for b.Loop() {
			a.Head()
		}
	})
	b.Run("due", func(b *testing.B) {
		now := time.Now()
		for b.Loop() {
			s.due(now)
		}
	})
}

// The seal of a segment: the archive point (under the actor's lock: the
// chain made durable) and the upload to a store on loopback, for an actor
// that appended one tick since the last.
func BenchmarkShipperSealAndUpload(b *testing.B) {
	a, s := benchShipper(b, limits.MinTickInterval)
	ctx := testCtx(b)
	b.Run("point", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.ArchivePoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Wall time is mostly the wait for the next tick; the process's CPU
	// over the seal and upload alone is the figure (what else runs then,
	// the tick's timers, counts too: an upper bound).
	b.Run("seal+upload", func(b *testing.B) {
		var cpu time.Duration
		for b.Loop() {
			_, l := a.Head()
			for n := l; n == l; _, n = a.Head() {
				time.Sleep(time.Millisecond) // wait for the next tick
			}
			cpu0 := cpuTime()
			s.upMu.Lock()
			if err := s.seal(ctx); err != nil {
				b.Fatal(err)
			}
			err := s.upload(ctx)
			s.upMu.Unlock()
			cpu += cpuTime() - cpu0
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/upload")
	})
}

// benchShipper ships a ticking actor's chain (ticks every tick) to a
// fresh store; the scan loop does not run: the benchmark drives it.
func benchShipper(b *testing.B, tick time.Duration) (*actorhost.Actor, *Shipper) {
	b.Helper()
	_, st := newStore(b)
	ar, err := New(Options{RecoveryPoint: time.Hour, SegmentBytes: 8 << 20, Logger: logr.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	a := startTicker(b, newEngine(b), b.TempDir(), tick)
	w, err := archive.Claim(testCtx(b), st, archive.ClaimOptions{ActorID: actorID, Epoch: 1})
	if err != nil {
		b.Fatal(err)
	}
	s, err := ar.Ship(testCtx(b), w, ActorSource(a), logr.Discard(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return a, s
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The archive's cost at scale (issue 13's figure): ARCHIVE_ACTORS (1,000)
// actors ticking every second on one engine for ARCHIVE_SECONDS (40 s)
// after a warm-up of a recovery point, once without the archive and once
// shipping every chain to versitygw with the default recovery point
// (10 s) and segment size. Reported: the process's CPU in each run (the
// store's is versitygw's own, another process), the share the archive
// adds, and the requests the store got per actor per 10 s. Run with
// -benchtime 1x.
func BenchmarkArchive1000Actors(b *testing.B) {
	n, secs := 1000, 40
	if v, err := strconv.Atoi(os.Getenv("ARCHIVE_ACTORS")); err == nil && v > 0 {
		n = v
	}
	if v, err := strconv.Atoi(os.Getenv("ARCHIVE_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	uploads := 0 // DefaultConcurrency
	if v, err := strconv.Atoi(os.Getenv("ARCHIVE_UPLOADS")); err == nil && v > 0 {
		uploads = v
	}
	const rp = 10 * time.Second
	run := func(b *testing.B, archived bool) (cpu time.Duration, requests int64, oldest time.Duration) {
		e := newEngine(b)
		_, st := newStore(b)
		var ar *Archiver
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if archived {
			var err error
			if ar, err = New(Options{RecoveryPoint: rp, SegmentBytes: 8 << 20, Concurrency: uploads, Logger: logr.Discard()}); err != nil {
				b.Fatal(err)
			}
			go ar.Run(ctx)
		}
		root := b.TempDir()
		actors := make([]*actorhost.Actor, n)
		for i := range actors {
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			actors[i] = startTickerID(b, e, filepath.Join(root, id), id, time.Second)
			if archived {
				w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: id, Epoch: 1})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ar.Ship(ctx, w, ActorSource(actors[i]), logr.Discard(), nil); err != nil {
					b.Fatal(err)
				}
			}
		}
		time.Sleep(rp + 2*time.Second) // warm-up: every actor sealed once
		cpu0, req0 := cpuTime(), st.requests()
		// The age of the oldest event not archived yet, sampled: how the
		// recovery point holds under this load.
		for end := time.Now().Add(time.Duration(secs) * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if ar != nil {
				oldest = max(oldest, ar.oldest())
			}
		}
		cpu, requests = cpuTime()-cpu0, st.requests()-req0
		for _, a := range actors {
			_ = a.Stop(context.Background(), "over")
		}
		return cpu, requests, oldest
	}
	for b.Loop() {
		base, _, _ := run(b, false)
		with, req, oldest := run(b, true)
		window := time.Duration(secs) * time.Second
		b.ReportMetric(base.Seconds()/window.Seconds()*100, "%cpu-without")
		b.ReportMetric(with.Seconds()/window.Seconds()*100, "%cpu-with")
		b.ReportMetric((with-base).Seconds()/window.Seconds()*100, "%cpu-archiving")
		b.ReportMetric(float64(req)/float64(n)/(window.Seconds()/10), "requests/actor/10s")
		b.ReportMetric(float64(req)/window.Minutes(), "requests/min")
		b.ReportMetric(oldest.Seconds(), "s-oldest-unarchived")
	}
}

// The local tail's figure: TAIL_ACTORS (10) actors ticking every 100 ms
// for TAIL_SECONDS (30 s), their chains shipped to versitygw with a 1 s
// recovery point, once keeping every chain on the node (LocalTail 0) and
// once with a tail of TAIL_BYTES (16 KiB); the node's chain bytes (all
// the actors' chain.log and rotated files) sampled every 5 s are logged,
// and the last sample of each reported. Run with -benchtime 1x -v.
func BenchmarkLocalTail(b *testing.B) {
	n, secs, tail := 10, 30, int64(16<<10)
	if v, err := strconv.Atoi(os.Getenv("TAIL_ACTORS")); err == nil && v > 0 {
		n = v
	}
	if v, err := strconv.Atoi(os.Getenv("TAIL_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	if v, err := strconv.ParseInt(os.Getenv("TAIL_BYTES"), 10, 64); err == nil && v > 0 {
		tail = v
	}
	run := func(b *testing.B, tail int64) (samples []int64, archivedEvents uint64) {
		e := newEngine(b)
		_, st := newStore(b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ar, err := New(Options{RecoveryPoint: time.Second, SegmentBytes: 8 << 20, LocalTail: tail, Logger: logr.Discard()})
		if err != nil {
			b.Fatal(err)
		}
		go ar.Run(ctx)
		root := b.TempDir()
		dirs := make([]string, n)
		ships := make([]*Shipper, n)
		for i := range dirs {
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			dirs[i] = filepath.Join(root, id)
			a := startTickerID(b, e, dirs[i], id, 100*time.Millisecond)
			w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: id, Epoch: 1})
			if err != nil {
				b.Fatal(err)
			}
			if ships[i], err = ar.Ship(ctx, w, ActorSource(a), logr.Discard(), nil); err != nil {
				b.Fatal(err)
			}
		}
		for t := 0; t <= secs; t += 5 {
			if t > 0 {
				time.Sleep(5 * time.Second)
			}
			var total int64
			for _, d := range dirs {
				n, _ := chainBytes(b, d)
				total += n
			}
			samples = append(samples, total)
		}
		for _, s := range ships {
			archivedEvents += s.Archived()
		}
		return samples, archivedEvents
	}
	for b.Loop() {
		all, evAll := run(b, 0)
		kept, evKept := run(b, tail)
		for i := range all {
			b.Logf("t=%3ds  chain bytes on the node: %8d without a tail, %8d with a %d-byte tail", 5*i, all[i], kept[i], tail)
		}
		b.Logf("archived events: %d without a tail, %d with", evAll, evKept)
		b.ReportMetric(float64(all[len(all)-1])/float64(n), "bytes/actor-all")
		b.ReportMetric(float64(kept[len(kept)-1])/float64(n), "bytes/actor-tail")
	}
}
