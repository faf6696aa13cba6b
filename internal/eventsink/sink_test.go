package eventsink

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// fakeEvents is an API server that takes Event creates and notes when.
type fakeEvents struct {
	mu    sync.Mutex
	times []time.Time
}

func (f *fakeEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/events") {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(body)
}

func (f *fakeEvents) sent() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.times...)
}

// Every Event recorded is written, a burst of them no faster than the
// sink's rate limit lets through.
func TestSinkWritesEveryEventAtItsRate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		events int
	}{
		{"fewer than the burst", Options{QPS: 50, Burst: 10}, 5},
		{"a burst beyond it", Options{QPS: 50, Burst: 10}, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeEvents{}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			s, err := New(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Start(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			rec := s.Recorder(scheme.Scheme, "test")
			begin := time.Now()
			for i := range tc.events {
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p" + string(rune('a'+i%26)) + string(rune('a'+i/26))}}
				rec.Eventf(pod, nil, corev1.EventTypeNormal, "Placed", "Place", "event %d", i)
			}
			deadline := time.Now().Add(30 * time.Second)
			for len(fake.sent()) < tc.events && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			sent := fake.sent()
			if len(sent) != tc.events {
				t.Fatalf("%d of %d Events written", len(sent), tc.events)
			}
			// The token bucket lets Burst through at once, then QPS a
			// second: the last can't come sooner than that allows.
			if extra := tc.events - tc.opts.Burst; extra > 0 {
				least := time.Duration(float64(extra-1) / float64(tc.opts.QPS) * float64(time.Second))
				if took := sent[len(sent)-1].Sub(begin); took < least {
					t.Errorf("%d Events written in %s, faster than %g/s after a burst of %d allows (%s)", tc.events, took, tc.opts.QPS, tc.opts.Burst, least)
				}
			}
		})
	}
}

// A sink whose context ends writes what it has queued before it stops.
func TestSinkDrainsItsQueueWhenStopped(t *testing.T) {
	fake := &fakeEvents{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s, err := New(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}}, Options{QPS: 50, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	rec := s.Recorder(scheme.Scheme, "test")
	const n = 30
	for i := range n {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p" + string(rune('a'+i%26)) + string(rune('a'+i/26))}}
		rec.Eventf(pod, nil, corev1.EventTypeNormal, "Stopped", "Stop", "event %d", i)
	}
	// Every Event has reached the writer (waiting for the rate limiter)
	// before the stop: the broadcaster hands them over asynchronously.
	deadline := time.Now().Add(30 * time.Second)
	for s.inflight.n.Load()+int64(len(fake.sent())) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(fake.sent()); got != n {
		t.Fatalf("%d of %d Events written before the sink stopped", got, n)
	}
}
