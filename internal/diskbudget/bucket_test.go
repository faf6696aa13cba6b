package diskbudget

import (
	"math"
	"testing"
)

func TestBucket(t *testing.T) {
	type step struct {
		op            string // wait, take, debt
		at, n, expect float64
	}
	tests := map[string]struct {
		rate, burst int64
		steps       []step
	}{
		"a full bucket serves its burst at once": {100, 50, []step{
			{"wait", 0, 50, 0}, {"take", 0, 50, 0},
			{"wait", 0, 10, 0.1}, // empty: 10 tokens take 0.1 s
			{"debt", 0, 0, 0},
		}},
		"it refills at its rate, up to its burst": {100, 50, []step{
			{"take", 0, 50, 0},
			{"wait", 0.2, 20, 0}, // 20 tokens back after 0.2 s
			{"wait", 10, 50, 0},  // full again
			{"wait", 10, 51, 0},  // more than the burst: waits for a full bucket only
		}},
		"a request larger than the burst leaves it in debt": {100, 50, []step{
			{"take", 0, 250, 0},
			{"debt", 0, 0, 2},       // 200 tokens of debt at 100/s
			{"wait", 0, 1, 2.01},    // the next token comes once the debt is paid
			{"wait", 0, 500, 2.5},   // a big one waits for a full bucket
			{"debt", 1.5, 0, 0.5},   // half a second of debt left
			{"wait", 3, 1, 0},       // paid off
			{"take", 3, 1, 0},       // taken at 3: the debt does not carry over
			{"debt", 3, 0, 0},       // 49 tokens left
			{"wait", 3, 49, 0},      //
			{"wait", 3, 50, 0.01},   //
			{"take", 3.01, 50, 0},   // taken at the end of its wait
			{"wait", 3.01, 1, 0.01}, //
			{"debt", 3.01, 0, 0},    //
			{"wait", 100, 50, 0},    //
			{"wait", 100, 1e9, 0},   //
			{"debt", 100, 0, 0},     //
			{"take", 100, 1e9, 0},   //
			{"debt", 100, 0, 1e7},   // (1e9-50)/100
			{"wait", 100, 1, 1e7 + 0.01},
		}},
		"rate 0 is no limit": {0, 0, []step{
			{"take", 0, 1e12, 0}, {"wait", 0, 1e12, 0}, {"debt", 0, 0, 0},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := newBucket(tc.rate, tc.burst)
			for i, s := range tc.steps {
				var got float64
				switch s.op {
				case "wait":
					got = b.wait(s.at, s.n)
				case "take":
					b.take(s.at, s.n)
					continue
				case "debt":
					got = b.debt(s.at)
				}
				if math.Abs(got-s.expect) > 1e-6*max(1, s.expect) {
					t.Fatalf("step %d (%s at %g, n %g): %g, want %g", i, s.op, s.at, s.n, got, s.expect)
				}
			}
		})
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 16 << 20: "16.0 MiB", 5 << 30: "5.0 GiB", 3 << 40: "3.0 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
