package asyncwriter

import (
	"context"
	"io"
	"sync"
)

// Writer is an io.Writer whose Write never blocks and never fails: it
// queues a copy of what it is given (one Write is one unit: a log line) and
// a goroutine writes the queue to the destination in order.
type Writer struct {
	out    io.Writer
	max    int
	notice func(dropped uint64) []byte
	onFail func(error)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []entry
	queued int // bytes in queue
	// inflight is how many lines the goroutine is writing.
	inflight int
	total    uint64
	failed   error
	closing  bool
	done     chan struct{}
}

// entry is a Write's bytes, or (data nil) a run of dropped Writes, kept in
// the queue where they were dropped so the notice says where lines are
// missing.
type entry struct {
	data    []byte
	dropped uint64
}

// New starts a Writer to out that queues at most maxBytes. notice formats
// the line that stands for n dropped Writes (nil: none is written); onFail,
// if not nil, is called once, from the Writer's goroutine, with the first
// error of out, after which everything is dropped.
func New(out io.Writer, maxBytes int, notice func(n uint64) []byte, onFail func(error)) *Writer {
	w := &Writer{out: out, max: maxBytes, notice: notice, onFail: onFail, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write queues a copy of p, or drops it when the queue is full or the
// destination failed. It always returns len(p), nil: a dropped log line is
// counted, never an error for the one who logged it.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.failed != nil || w.closing:
		w.total++
	case w.queued+len(p) > w.max:
		w.total++
		if n := len(w.queue); n > 0 && w.queue[n-1].data == nil {
			w.queue[n-1].dropped++
		} else {
			w.queue = append(w.queue, entry{dropped: 1})
		}
		w.cond.Signal()
	default:
		w.queue = append(w.queue, entry{data: append([]byte(nil), p...)})
		w.queued += len(p)
		w.cond.Signal()
	}
	return len(p), nil
}

// Dropped is how many Writes were dropped so far.
func (w *Writer) Dropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

// Err is the destination's first error, nil while it takes what it is
// given.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// Close drops what is written from now on and waits until the queue is
// written or ctx ends. Then what is still queued or being written counts
// as dropped (a destination that blocks for good keeps the goroutine,
// which ends with the process). It returns the destination's error, if
// any, or ctx's.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closing = true
	w.cond.Signal()
	w.mu.Unlock()
	select {
	case <-w.done:
		return w.Err()
	case <-ctx.Done():
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed == nil {
		w.total += w.unwritten() + uint64(w.inflight)
		w.queue, w.queued, w.inflight = nil, 0, 0
		w.failed = ctx.Err()
	}
	return ctx.Err()
}

// unwritten counts the lines in the queue, dropped ones included.
func (w *Writer) unwritten() uint64 {
	var n uint64
	for _, e := range w.queue {
		n += e.dropped
		if e.data != nil {
			n++
		}
	}
	return n
}

func (w *Writer) run() {
	defer close(w.done)
	var buf []byte
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closing {
			w.cond.Wait()
		}
		if len(w.queue) == 0 { // closing, and all written
			w.mu.Unlock()
			return
		}
		batch := w.queue
		w.queue = nil
		w.inflight = 0
		for _, e := range batch {
			if e.data != nil {
				w.inflight++
			}
		}
		w.mu.Unlock()

		// One write per batch: fewer system calls when output is slow.
		buf = buf[:0]
		size := 0
		for _, e := range batch {
			if e.data == nil {
				if w.notice != nil {
					buf = append(buf, w.notice(e.dropped)...)
				}
				continue
			}
			buf = append(buf, e.data...)
			size += len(e.data)
		}
		_, err := w.out.Write(buf)
		if cap(buf) > 1<<20 {
			buf = nil // a burst's buffer is not kept
		}
		w.mu.Lock()
		if w.failed != nil { // Close gave up on it meanwhile
			w.mu.Unlock()
			return
		}
		w.queued -= size
		w.inflight = 0
		if err != nil {
			w.failed = err
			w.total += w.unwritten()
			w.queue, w.queued = nil, 0
		}
		w.mu.Unlock()
		if err != nil {
			if w.onFail != nil {
				w.onFail(err)
			}
			return
		}
	}
}
