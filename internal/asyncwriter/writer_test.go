package asyncwriter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func notice(n uint64) []byte { return fmt.Appendf(nil, "dropped %d\n", n) }

// TestBlockedDestination: with a destination that takes nothing, Write
// returns at once however much is written; once the destination reads,
// every line written is either there, in order, or counted by a notice
// at the place it was dropped.
func TestBlockedDestination(t *testing.T) {
	r, pw := io.Pipe()
	w := New(pw, 4096, notice, nil)
	const lines = 10_000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range lines {
			fmt.Fprintf(w, "line %d %s\n", i, strings.Repeat("x", 100))
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Write blocked on a destination that reads nothing")
	}
	if w.Dropped() == 0 {
		t.Fatal("nothing dropped although the destination took nothing")
	}
	got := make(chan error, 1)
	go func() {
		next, dropped := 0, uint64(0)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			n, _ := strconv.Atoi(f[1])
			switch f[0] {
			case "dropped":
				next += n
				dropped += uint64(n)
			case "line":
				if n != next {
					got <- fmt.Errorf("line %d where %d was due", n, next)
					return
				}
				next++
			}
		}
		if next != lines {
			got <- fmt.Errorf("lines and notices account for %d of %d", next, lines)
			return
		}
		if dropped != w.Dropped() {
			got <- fmt.Errorf("notices say %d dropped, Dropped %d", dropped, w.Dropped())
			return
		}
		got <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

type failing struct{ writes atomic.Int32 }

func (f *failing) Write(p []byte) (int, error) {
	f.writes.Add(1)
	return 0, syscall.EPIPE
}

// TestFailedDestination: the first error is reported once; later Writes
// are dropped and counted, and never reach the destination.
func TestFailedDestination(t *testing.T) {
	out := &failing{}
	var calls atomic.Int32
	failed := make(chan error, 2)
	w := New(out, 1<<20, notice, func(err error) { calls.Add(1); failed <- err })
	fmt.Fprintln(w, "first")
	select {
	case err := <-failed:
		if !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("onFail(%v)", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("onFail not called")
	}
	for range 10 {
		fmt.Fprintln(w, "later")
	}
	if err := w.Close(context.Background()); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Close = %v", err)
	}
	if calls.Load() != 1 || out.writes.Load() != 1 || w.Dropped() != 10 {
		t.Fatalf("onFail %d times, %d writes, %d dropped", calls.Load(), out.writes.Load(), w.Dropped())
	}
}

// TestCloseWaitsForTheQueue: Close returns once everything queued is
// written; with a destination that never takes it, when ctx ends.
func TestCloseWaitsForTheQueue(t *testing.T) {
	var b strings.Builder
	w := New(&b, 1<<20, notice, nil)
	for i := range 100 {
		fmt.Fprintf(w, "%d\n", i)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != 100 || w.Dropped() != 0 {
		t.Fatalf("%d lines written, %d dropped", n, w.Dropped())
	}
	fmt.Fprintln(w, "after close")
	if w.Dropped() != 1 {
		t.Fatal("a Write after Close was not dropped")
	}

	_, pw := io.Pipe()
	blocked := New(pw, 1<<20, notice, nil)
	fmt.Fprintln(blocked, "never read")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := blocked.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close on a blocked destination = %v", err)
	}
	if blocked.Dropped() != 1 {
		t.Fatalf("the line never written is not counted: %d dropped", blocked.Dropped())
	}
	_ = pw.CloseWithError(errors.New("test over"))
}
