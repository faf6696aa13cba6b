package diskbudget

// bucket is a token bucket in the virtual-scheduling form (GCRA): instead
// of a token count it keeps tat, the time at which the bucket is full
// again. Taking n tokens moves tat n/rate seconds later; the bucket is in
// debt while tat lies more than burst/rate seconds ahead of now.
//
// A request larger than the burst can still be served: it waits until the
// bucket is full and leaves it in debt, so the long-run rate holds and no
// event is too big to ever be written. Times are seconds since the owner's
// base time, as float64 (exact to well under a microsecond for years).
type bucket struct {
	rate  float64 // tokens per second; 0 means no limit
	burst float64
	tat   float64
}

func newBucket(rate, burst int64) bucket {
	if rate <= 0 {
		return bucket{}
	}
	return bucket{rate: float64(rate), burst: float64(max(burst, 1))}
}

// wait returns how long, from now, until n tokens may be taken: until the
// bucket holds min(n, burst).
func (b *bucket) wait(now, n float64) float64 {
	if b.rate == 0 {
		return 0
	}
	m := min(n, b.burst)
	return max(0, b.tat-(b.burst-m)/b.rate-now)
}

// take takes n tokens at time at (now, or the end of a wait); the bucket
// may go into debt.
func (b *bucket) take(at, n float64) {
	if b.rate == 0 {
		return
	}
	b.tat = max(b.tat, at) + n/b.rate
}

// debt returns how long, from now, until the bucket is out of debt (holds
// no fewer than zero tokens).
func (b *bucket) debt(now float64) float64 {
	if b.rate == 0 {
		return 0
	}
	return max(0, b.tat-b.burst/b.rate-now)
}

// available returns the tokens the bucket holds at now (negative in debt).
func (b *bucket) available(now float64) float64 {
	if b.rate == 0 {
		return unlimited
	}
	return b.burst - max(0, b.tat-now)*b.rate
}

// grant takes need tokens at the end of a wait of w from now and, when
// there was nothing to wait for, up to extra more that the bucket holds
// now: a credit to spend without reading the clock. It returns what it
// took.
func (b *bucket) grant(now, w, need, extra float64) float64 {
	if b.rate == 0 {
		return need + extra
	}
	got := need
	if w == 0 {
		got += max(0, min(extra, b.available(now)-need))
	}
	b.take(now+w, got)
	return got
}

// unlimited is the credit of a bucket without a limit: never spent.
const unlimited = 1 << 62
