package actorhost

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// drainLinger is how long a drain goroutine waits for another actor's
// mailbox once its own is empty, before it exits.
const drainLinger = 100 * time.Millisecond

// drainPool runs the actors' mailbox drains. A mailbox has no goroutine
// while it is empty; when a push finds it empty, its drain is handed to a
// goroutine of the pool that waits for work (one that finished another
// drain within drainLinger), or a new one. Starting a goroutine per drain
// cost, besides the goroutine, the growth of its stack to what a call into
// wazero takes, again for every message that found the mailbox empty (a
// quarter of a request's CPU in BenchmarkRequest/external's profile); a
// goroutine of the pool keeps its grown stack. The pool holds goroutines
// only while messages flow, at most maxIdle of them waiting: drainLinger
// after the last message, none. (Without the bound, 200 actors that tick
// together would keep 200 goroutines waiting for each other's ticks.)
type drainPool struct {
	// waiting counts the goroutines waiting for an actor; maxIdle bounds
	// it.
	waiting atomic.Int32
	maxIdle int32
	// handoff passes an actor to a goroutine waiting for one; unbuffered,
	// so a hand-off happens only when one is waiting.
	handoff chan *Actor
	// quit ends the waiting goroutines (Engine.Close).
	quit     chan struct{}
	quitOnce sync.Once
}

func newDrainPool() *drainPool {
	return &drainPool{handoff: make(chan *Actor), quit: make(chan struct{}), maxIdle: int32(runtime.GOMAXPROCS(0))}
}

// run drains a's mailbox on a goroutine of the pool.
func (p *drainPool) run(a *Actor) {
	select {
	case p.handoff <- a:
	default:
		go p.work(a)
	}
}

// work drains a, then whatever actor is handed to it, until none comes
// within drainLinger or maxIdle goroutines wait already.
func (p *drainPool) work(a *Actor) {
	var idle *time.Timer
	for {
		a.drain()
		if p.waiting.Add(1) > p.maxIdle {
			p.waiting.Add(-1)
			return
		}
		if idle == nil {
			idle = time.NewTimer(drainLinger)
		} else {
			idle.Reset(drainLinger)
		}
		select {
		case a = <-p.handoff:
			p.waiting.Add(-1)
		case <-idle.C:
			p.waiting.Add(-1)
			return
		case <-p.quit:
			p.waiting.Add(-1)
			idle.Stop()
			return
		}
	}
}

// close ends the goroutines waiting for work; drains in progress finish.
func (p *drainPool) close() { p.quitOnce.Do(func() { close(p.quit) }) }
