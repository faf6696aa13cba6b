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
	// Wall time is mostly the wait for the next tick; the CPU the process
	// spends a seal and upload (the tick's own included) is the figure.
	b.Run("seal+upload", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			_, l := a.Head()
			for n := l; n == l; _, n = a.Head() {
				time.Sleep(time.Millisecond) // wait for the next tick
			}
			s.upMu.Lock()
			if err := s.seal(ctx); err != nil {
				b.Fatal(err)
			}
			err := s.upload(ctx)
			s.upMu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/upload")
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
	const rp = 10 * time.Second
	run := func(b *testing.B, archived bool) (cpu time.Duration, requests int64) {
		e := newEngine(b)
		_, st := newStore(b)
		var ar *Archiver
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if archived {
			var err error
			if ar, err = New(Options{RecoveryPoint: rp, SegmentBytes: 8 << 20, Logger: logr.Discard()}); err != nil {
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
		time.Sleep(time.Duration(secs) * time.Second)
		cpu, requests = cpuTime()-cpu0, st.requests()-req0
		for _, a := range actors {
			_ = a.Stop(context.Background(), "over")
		}
		return cpu, requests
	}
	for b.Loop() {
		base, _ := run(b, false)
		with, req := run(b, true)
		window := time.Duration(secs) * time.Second
		b.ReportMetric(base.Seconds()/window.Seconds()*100, "%cpu-without")
		b.ReportMetric(with.Seconds()/window.Seconds()*100, "%cpu-with")
		b.ReportMetric((with-base).Seconds()/window.Seconds()*100, "%cpu-archiving")
		b.ReportMetric(float64(req)/float64(n)/(window.Seconds()/10), "requests/actor/10s")
		b.ReportMetric(float64(req)/window.Minutes(), "requests/min")
	}
}
