package diskbudget

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Space is what a filesystem reports: the bytes an unprivileged writer may
// still use (statfs' f_bavail) and its size.
type Space struct {
	Free, Total uint64
}

// FreeSpaceFunc reads the free space of the filesystem holding dir.
type FreeSpaceFunc func(dir string) (Space, error)

// NodeOptions configure a Node.
type NodeOptions struct {
	// Dir is the data directory whose filesystem the watermark watches.
	Dir string
	// FreeSpace reads it; nil is StatFS. Tests inject their own.
	FreeSpace FreeSpaceFunc
}

// Node is a host's node-wide budget, shared by all its actors: a byte and
// an event rate, and the free-space watermark. Safe for concurrent use.
//
// The rates are one token bucket each, taken in arrival order: a
// reservation that must wait is given the next free slot, and the ones
// after it queue behind it. Each actor's appends are serialized, so an
// actor holds at most one reservation at a time: however much it floods,
// another actor's append waits for at most one reservation of each other
// actor ahead of it, and keeps its own rate.
type Node struct {
	lim  NodeLimits
	dir  string
	free FreeSpaceFunc
	base time.Time

	mu            sync.Mutex
	bytes, events bucket
	// estFree is the free space last read, less what was written since;
	// minFree the watermark in bytes; total the filesystem's size.
	estFree, minFree, total int64
	measured                bool
	changed                 chan struct{} // closed when pressure changes

	// pressure is set while the free space is below the watermark.
	pressure atomic.Bool
}

// NewNode returns a node budget. Its watermark is off until the free
// space has been read (Poll, or Watch).
func NewNode(l NodeLimits, o NodeOptions) *Node {
	n := &Node{
		lim: l, dir: o.Dir, free: o.FreeSpace, base: time.Now(),
		bytes:   newBucket(l.BytesPerSecond, l.BurstBytes),
		events:  newBucket(l.EventsPerSecond, l.BurstEvents),
		changed: make(chan struct{}),
	}
	if n.free == nil {
		n.free = StatFS
	}
	return n
}

// watermark reports whether the watermark is on.
func (n *Node) watermark() bool { return n.lim.MinFreeBytes > 0 || n.lim.MinFreePercent > 0 }

// Poll reads the free space of the data directory now and updates the
// pressure.
func (n *Node) Poll() error {
	if !n.watermark() {
		return nil
	}
	s, err := n.free(n.dir)
	if err != nil {
		return fmt.Errorf("reading the free space of %s: %w", n.dir, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.measured = true
	n.total = clampInt64(s.Total)
	n.estFree = clampInt64(s.Free)
	n.minFree = max(n.lim.MinFreeBytes, int64(n.lim.MinFreePercent/100*float64(n.total)))
	n.updatePressureLocked()
	return nil
}

func clampInt64(v uint64) int64 { return int64(min(v, 1<<62)) }

// Watch polls the free space every interval until ctx ends, handing each
// error to onError (nil: ignored); the pressure keeps its last value while
// the free space can't be read.
func (n *Node) Watch(ctx context.Context, interval time.Duration, onError func(error)) {
	if !n.watermark() {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := n.Poll(); err != nil && onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// updatePressureLocked sets the pressure from the estimate and tells the
// waiters when it changed.
func (n *Node) updatePressureLocked() {
	p := n.measured && n.estFree < n.minFree
	if p != n.pressure.Load() {
		n.pressure.Store(p)
		close(n.changed)
		n.changed = make(chan struct{})
	}
}

// Pressure returns the *Error of the watermark while the free space is
// below it, nil otherwise.
func (n *Node) Pressure() error {
	if n == nil || !n.pressure.Load() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pressureErrorLocked()
}

func (n *Node) pressureErrorLocked() *Error {
	pct := ""
	if n.total > 0 {
		pct = " (" + strconv.FormatFloat(100*float64(max(n.estFree, 0))/float64(n.total), 'f', 1, 64) + "% of " + Bytes(n.total) + ")"
	}
	return &Error{Kind: KindPressure, Message: fmt.Sprintf(
		"the node's data directory %s has %s free%s, below the host's watermark of %s (--disk-min-free-bytes %d, --disk-min-free-percent %g): nothing more is written until space returns",
		n.dir, Bytes(max(n.estFree, 0)), pct, Bytes(n.minFree), n.lim.MinFreeBytes, n.lim.MinFreePercent)}
}

// Changed returns a channel that is closed when the pressure next changes.
func (n *Node) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

// reserve takes needB bytes and needE events from the node's rates in
// arrival order and waits for its slot, unless the slot lies past the
// deadline (deadline, else ctx's; none for neither), when it takes nothing
// and returns a KindNodeRate *Error. When nothing had to wait it takes a
// credit more, if the node has it to spare. It returns what it took and
// how long it waited; ctx (may be nil) ends the wait early.
func (n *Node) reserve(ctx context.Context, deadline time.Time, needB, needE float64, now time.Time) (gotB, gotE float64, waited time.Duration, err error) {
	n.mu.Lock()
	if n.pressure.Load() {
		err := n.pressureErrorLocked()
		n.mu.Unlock()
		return 0, 0, 0, err
	}
	t := now.Sub(n.base).Seconds()
	var w float64
	if needB > 0 {
		w = n.bytes.wait(t, needB)
	}
	if needE > 0 {
		w = max(w, n.events.wait(t, needE))
	}
	if w > 0 && deadline.IsZero() && ctx != nil {
		deadline, _ = ctx.Deadline()
	}
	if w > 0 && !deadline.IsZero() && now.Add(seconds(w)).After(deadline) {
		n.mu.Unlock()
		return 0, 0, 0, &Error{Kind: KindNodeRate, Message: fmt.Sprintf(
			"appending %s would wait %s for the node's append budget (--node-chain-bytes-per-second %d, --node-chain-events-per-second %d, shared by the host's actors), past the call's deadline",
			Bytes(int64(needB)), roundWait(seconds(w)), n.lim.BytesPerSecond, n.lim.EventsPerSecond)}
	}
	extraB, extraE := float64(creditBytes), float64(creditEvents)
	if needE == 0 { // a state write: no credit
		extraB, extraE = 0, 0
	}
	gotB = n.bytes.grant(t, w, needB, extraB)
	gotE = n.events.grant(t, w, needE, extraE)
	n.wroteLocked(gotB)
	n.mu.Unlock()
	return gotB, gotE, seconds(w), sleep(ctx, seconds(w))
}

// charge takes bytes and events at now without waiting: the budget may go
// into debt, which later reservations wait off.
func (n *Node) charge(bytes, events float64, now time.Time) {
	n.mu.Lock()
	t := now.Sub(n.base).Seconds()
	n.bytes.take(t, bytes)
	n.events.take(t, events)
	n.wroteLocked(bytes)
	n.mu.Unlock()
}

// wroteLocked counts bytes about to be written against the free space.
func (n *Node) wroteLocked(bytes float64) {
	if n.measured {
		// What is written between two polls counts against the free
		// space at once: a flood can't outrun the poll interval.
		n.estFree -= int64(min(bytes, 1<<62))
		if n.estFree < n.minFree && !n.pressure.Load() {
			n.updatePressureLocked()
		}
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// roundWait rounds a wait for a message: to the millisecond, or to 10 µs
// below 10 ms (a 1 ms wait is not "0s").
func roundWait(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// sleep waits d, or until ctx ends (a nil ctx is never done).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if ctx == nil {
		time.Sleep(d)
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Bytes formats a byte count for a message: 1.5 MiB, 512 B.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + [...]string{"KiB", "MiB", "GiB", "TiB", "PiB"}[exp]
}
