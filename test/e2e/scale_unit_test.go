//go:build e2e

package e2e

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	theaterv1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
)

// The scale test's own arithmetic, checked without a cluster:
// go test -tags e2e -run 'TestPercentile|TestForEach|TestCountActors' ./test/e2e/

func TestPercentile(t *testing.T) {
	s := func(secs ...int) []time.Duration {
		var out []time.Duration
		for _, v := range secs {
			out = append(out, time.Duration(v)*time.Second)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      int
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", s(7), 50, 7 * time.Second},
		{"one p90", s(7), 90, 7 * time.Second},
		{"ten p50", s(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 50, 5 * time.Second},
		{"ten p90", s(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Second},
		{"ten max", s(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 100, 10 * time.Second},
		{"three p50", s(1, 2, 3), 50, 2 * time.Second},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: percentile(%v, %d) = %v, want %v", tc.name, tc.sorted, tc.p, got, tc.want)
		}
	}
}

func TestForEach(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name       string
		n, workers int
		failAt     int // -1: none
		wantErr    error
	}{
		{"all", 1000, 16, -1, nil},
		{"fewer than workers", 3, 16, -1, nil},
		{"none", 0, 16, -1, nil},
		{"an error stops it", 1000, 4, 10, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			seen := make([]atomic.Bool, tc.n)
			err := forEach(context.Background(), tc.n, tc.workers, func(ctx context.Context, i int) error {
				calls.Add(1)
				if seen[i].Swap(true) {
					t.Errorf("index %d called twice", i)
				}
				if i == tc.failAt {
					return boom
				}
				return ctx.Err()
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("forEach: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && calls.Load() != int64(tc.n) {
				t.Errorf("%d calls, want %d", calls.Load(), tc.n)
			}
			if tc.wantErr != nil && calls.Load() == int64(tc.n) {
				t.Errorf("all %d indexes were fed after the error", tc.n)
			}
		})
	}
}

func TestCountActors(t *testing.T) {
	actor := func(name string, phase theaterv1alpha1.Phase, ready metav1.ConditionStatus, reason string) theaterv1alpha1.Actor {
		a := theaterv1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Name: name}}
		a.Status.Phase = phase
		if ready != "" {
			a.Status.Conditions = []metav1.Condition{{Type: theaterv1alpha1.ConditionReady, Status: ready, Reason: reason, Message: "m"}}
		}
		return a
	}
	c := countActors([]theaterv1alpha1.Actor{
		actor("a", theaterv1alpha1.PhaseRunning, metav1.ConditionTrue, theaterv1alpha1.ReasonRunning),
		actor("b", theaterv1alpha1.PhasePending, metav1.ConditionFalse, theaterv1alpha1.ReasonInsufficientMemory),
		actor("c", theaterv1alpha1.PhasePending, metav1.ConditionFalse, theaterv1alpha1.ReasonInsufficientMemory),
		actor("d", theaterv1alpha1.PhaseFailed, metav1.ConditionFalse, theaterv1alpha1.ReasonTrapped),
		actor("e", "", "", ""),
	}, 6)
	want := "ready 1/6 (5 exist), failed 1, phases (none)=1 Failed=1 Pending=2 Running=1; " +
		"not Ready by reason (no Ready condition)=1 InsufficientMemory=2 Trapped=1; e.g. b: phase \"Pending\""
	if got := c.String(); len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("countActors:\n got %s\nwant %s...", got, want)
	}
}
