package controllers

import "time"

// Backoff is how long a stopped actor waits before its restart.
type Backoff struct {
	// Base is the first wait; each restart doubles it.
	Base time.Duration
	// Max caps the wait.
	Max time.Duration
	// Reset: an actor that ran this long since its last restart before it
	// failed waits only Base again.
	Reset time.Duration
}

// DefaultBackoff is 10s, 20s, 40s, ... up to 5m, as kubelet's.
var DefaultBackoff = Backoff{Base: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}

// Delay is the wait before restart number restarts+1: min(Base * 2^restarts,
// Max), or Base when the actor ran at least Reset before it stopped.
func (b Backoff) Delay(restarts int32, ranFor time.Duration) time.Duration {
	if b.Base <= 0 {
		return 0
	}
	if restarts <= 0 || (b.Reset > 0 && ranFor >= b.Reset) {
		return min(b.Base, b.max())
	}
	d := b.Base
	for range restarts {
		if d >= b.max()/2 {
			return b.max()
		}
		d *= 2
	}
	return min(d, b.max())
}

func (b Backoff) max() time.Duration {
	if b.Max <= 0 {
		return b.Base
	}
	return b.Max
}
