package actorhost

import (
	"sync"
	"time"
)

// workKind is what a mailbox item asks of the actor.
type workKind uint8

const (
	workTick workKind = iota
	workSend
	workRequest
)

// work is one item of an actor's mailbox: a tick, a message or a request.
type work struct {
	kind workKind
	// The message (send, request).
	from        Sender
	id          string
	msg         []byte
	traceParent string
	path        []string
	// reply receives a request's answer exactly once; buffered, so the
	// actor never blocks on a requester that gave up.
	reply chan reply
	// deadline is when the requester gives up: a request still queued
	// then is dropped unhandled.
	deadline time.Time
	// queuedAt is when it was queued (monotonic, since monoBase), when
	// the engine measures delivery times (EngineOptions.MessageTimings).
	queuedAt time.Duration
}

type reply struct {
	resp []byte
	err  error
}

// answer hands w's requester its answer; a no-op for sends and ticks.
func (w *work) answer(resp []byte, err error) {
	if w.reply != nil {
		w.reply <- reply{resp, err}
		w.reply = nil
	}
}

// mailbox is an actor's one FIFO of work: ticks, messages and requests, in
// arrival order, handled one at a time by a drain that runs (on a
// goroutine of the engine's drainPool) only while the mailbox is
// non-empty, so an idle actor costs no goroutine. It is bounded in items and bytes; at most one tick waits in it.
type mailbox struct {
	mu          sync.Mutex
	items       []*work
	head        int // items[head:] are queued
	bytes       int
	maxItems    int
	maxBytes    int
	draining    bool
	tickPending bool
	closed      bool
	// fullSince is when the mailbox, full, first refused work since it
	// last drained to half its bounds: how long it has stayed full.
	fullSince time.Time
	// owner is the actor whose mailbox this is; pool runs its drain.
	owner *Actor
	pool  *drainPool
	// drains counts the running drain (0 or 1), so that Stop can wait
	// for it.
	drains sync.WaitGroup
}

// queued is the number of items waiting; mu held.
func (m *mailbox) queued() int { return len(m.items) - m.head }

// push queues w and starts the drain when none runs. full is true
// when the bound refused w; closed when the run is over. A tick is not
// counted against the bound (there is at most one), and is dropped when
// one is pending already.
func (m *mailbox) push(w *work) (full, closed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, true
	}
	switch {
	case w.kind == workTick:
		if m.tickPending {
			return false, false
		}
		m.tickPending = true
	case m.queued() >= m.maxItems || m.bytes+len(w.msg) > m.maxBytes:
		if m.fullSince.IsZero() {
			m.fullSince = time.Now()
		}
		return true, false
	}
	if m.head > 0 && m.head == len(m.items) {
		// Empty: reuse the array from its start.
		clear(m.items)
		m.items, m.head = m.items[:0], 0
	}
	m.items = append(m.items, w)
	m.bytes += len(w.msg)
	if !m.draining {
		m.draining = true
		m.drains.Add(1)
		m.pool.run(m.owner)
	}
	return false, false
}

// pop takes the next item; nil when the mailbox is empty, and then the
// drain, which alone calls pop, must end: draining is cleared under the
// same lock, so the next push starts a new one.
func (m *mailbox) pop() *work {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.queued() == 0 {
		m.draining = false
		clear(m.items)
		m.items, m.head = m.items[:0], 0
		m.drains.Done()
		m.fullSince = time.Time{}
		return nil
	}
	w := m.items[m.head]
	m.items[m.head] = nil
	m.head++
	m.bytes -= len(w.msg)
	if w.kind == workTick {
		m.tickPending = false
	}
	if !m.fullSince.IsZero() && m.queued() <= m.maxItems/2 && m.bytes <= m.maxBytes/2 {
		m.fullSince = time.Time{}
	}
	return w
}

// close refuses further pushes and returns what was queued, for the caller
// to answer.
func (m *mailbox) close() []*work {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	left := append([]*work(nil), m.items[m.head:]...)
	clear(m.items)
	m.items, m.head, m.bytes, m.tickPending = m.items[:0], 0, 0, false
	m.fullSince = time.Time{}
	return left
}

// usage is what the mailbox holds, for the mailbox-full message.
func (m *mailbox) usage() (items, bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.queued(), m.bytes
}
