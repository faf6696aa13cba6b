package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ledger is the reconciler's own record of which host each actor is
// assigned to. The informer cache lags behind the reconciler's writes, so
// counting loads from it would place a burst of new actors on the host that
// looked emptiest a moment ago; the ledger is seeded from the cache once and
// then follows every successful status write.
type ledger struct {
	mu      sync.Mutex
	seeded  bool
	byActor map[types.NamespacedName]string
	load    map[string]int
}

func newLedger() *ledger {
	return &ledger{byActor: map[types.NamespacedName]string{}, load: map[string]int{}}
}

// needsSeed reports whether seed has yet to be called.
func (l *ledger) needsSeed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.seeded
}

// seed records the assignments found in the cache, keeping any the
// reconciler wrote meanwhile.
func (l *ledger) seed(assigned map[types.NamespacedName]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seeded {
		return
	}
	for k, host := range assigned {
		if _, ok := l.byActor[k]; !ok {
			l.setLocked(k, host)
		}
	}
	l.seeded = true
}

// set records that actor k is assigned to host ("" for none).
func (l *ledger) set(k types.NamespacedName, host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setLocked(k, host)
}

func (l *ledger) setLocked(k types.NamespacedName, host string) {
	if old, ok := l.byActor[k]; ok {
		if old == host {
			return
		}
		if old != "" {
			l.load[old]--
			if l.load[old] <= 0 {
				delete(l.load, old)
			}
		}
	}
	l.byActor[k] = host
	if host != "" {
		l.load[host]++
	}
}

// forget drops actor k, which no longer exists.
func (l *ledger) forget(k types.NamespacedName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setLocked(k, "")
	delete(l.byActor, k)
}

// reserve assigns actor k to the host pick chooses, in one step with the
// loads pick sees, so that concurrent placements never both take the last
// slot of a host or both see it emptiest. It returns the previous entry,
// to undo the reservation with set when the assignment can't be written.
func (l *ledger) reserve(k types.NamespacedName, pick func(loads map[string]int) (string, error)) (prev string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev = l.byActor[k]
	host, err := pick(l.load)
	if err != nil {
		return prev, err
	}
	l.setLocked(k, host)
	return prev, nil
}

// loads is a copy of the number of actors per host.
func (l *ledger) loads() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.load))
	for h, n := range l.load {
		out[h] = n
	}
	return out
}
