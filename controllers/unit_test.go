package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}
	tests := map[string]struct {
		b        Backoff
		restarts int32
		ranFor   time.Duration
		want     time.Duration
	}{
		"first failure waits Base":        {b: b, restarts: 0, want: 10 * time.Second},
		"doubles":                         {b: b, restarts: 1, want: 20 * time.Second},
		"doubles again":                   {b: b, restarts: 4, want: 160 * time.Second},
		"capped at Max":                   {b: b, restarts: 5, want: 5 * time.Minute},
		"no overflow for huge counts":     {b: b, restarts: 1 << 30, want: 5 * time.Minute},
		"negative count is the first":     {b: b, restarts: -1, want: 10 * time.Second},
		"a long run resets to Base":       {b: b, restarts: 7, ranFor: 10 * time.Minute, want: 10 * time.Second},
		"a short run does not":            {b: b, restarts: 7, ranFor: 9 * time.Minute, want: 5 * time.Minute},
		"no Reset: never resets":          {b: Backoff{Base: time.Second, Max: time.Minute}, restarts: 3, ranFor: time.Hour, want: 8 * time.Second},
		"Max below Base caps Base":        {b: Backoff{Base: time.Minute, Max: time.Second}, restarts: 0, want: time.Second},
		"no Max: Base forever":            {b: Backoff{Base: time.Second}, restarts: 6, want: time.Second},
		"no Base: no wait":                {b: Backoff{}, restarts: 3, want: 0},
		"Max exactly reached by doubling": {b: Backoff{Base: time.Second, Max: 8 * time.Second}, restarts: 3, want: 8 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.b.Delay(tc.restarts, tc.ranFor); got != tc.want {
				t.Fatalf("Delay(%d, %s) = %s; want %s", tc.restarts, tc.ranFor, got, tc.want)
			}
		})
	}
}

func TestLedger(t *testing.T) {
	k := func(n string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: n} }
	l := newLedger()
	if !l.needsSeed() {
		t.Fatal("a new ledger needs seeding")
	}
	// A write before the seed wins over the (older) cache content.
	l.set(k("a"), "h2")
	l.seed(map[types.NamespacedName]string{k("a"): "h1", k("b"): "h1", k("c"): ""})
	if l.needsSeed() {
		t.Fatal("seeded ledger asks for a seed")
	}
	want := func(loads map[string]int) {
		t.Helper()
		got := l.loads()
		if len(got) != len(loads) {
			t.Fatalf("loads %v; want %v", got, loads)
		}
		for h, n := range loads {
			if got[h] != n {
				t.Fatalf("loads %v; want %v", got, loads)
			}
		}
	}
	want(map[string]int{"h1": 1, "h2": 1})
	l.seed(map[types.NamespacedName]string{k("d"): "h1"}) // only once
	want(map[string]int{"h1": 1, "h2": 1})
	l.set(k("c"), "h1")
	want(map[string]int{"h1": 2, "h2": 1})
	l.set(k("c"), "h1") // idempotent
	want(map[string]int{"h1": 2, "h2": 1})
	l.set(k("a"), "h1") // a move
	want(map[string]int{"h1": 3})
	l.set(k("b"), "") // unassigned
	want(map[string]int{"h1": 2})
	l.forget(k("a"))
	l.forget(k("a"))
	l.forget(k("zzz"))
	want(map[string]int{"h1": 1})
	// The copy is the caller's.
	l.loads()["h1"] = 99
	want(map[string]int{"h1": 1})
}

// TestLedgerReserve places actors from many goroutines at once, each
// picking the least loaded of two hosts of capacity 30 as the reconciler
// does: they end balanced and no host goes past its capacity.
func TestLedgerReserve(t *testing.T) {
	l := newLedger()
	l.seed(nil)
	pick := func(loads map[string]int) (string, error) {
		best := ""
		for _, h := range []string{"h1", "h2"} {
			if loads[h] < 30 && (best == "" || loads[h] < loads[best]) {
				best = h
			}
		}
		if best == "" {
			return "", errors.New("full")
		}
		return best, nil
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for i := range 70 {
		wg.Go(func() {
			k := types.NamespacedName{Namespace: "ns", Name: fmt.Sprint(i)}
			if _, err := l.reserve(k, pick); err != nil {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if loads := l.loads(); loads["h1"] != 30 || loads["h2"] != 30 || refused != 10 {
		t.Fatalf("loads %v, %d refused; want 30/30 and 10", loads, refused)
	}
	// Undoing a reservation restores the previous entry.
	k := types.NamespacedName{Namespace: "ns", Name: "0"}
	l.set(k, "")
	prev, err := l.reserve(k, func(map[string]int) (string, error) { return "h3", nil })
	if err != nil || prev != "" || l.loads()["h3"] != 1 {
		t.Fatalf("reserve = %q, %v; loads %v", prev, err, l.loads())
	}
	l.set(k, prev)
	if _, ok := l.loads()["h3"]; ok {
		t.Fatalf("undone reservation still counted: %v", l.loads())
	}
}

func TestLedgerConcurrent(t *testing.T) {
	l := newLedger()
	l.seed(nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := types.NamespacedName{Namespace: "ns", Name: string(rune('a'+w)) + string(rune('a'+i%26))}
				l.set(k, []string{"h1", "h2", ""}[i%3])
				_ = l.loads()
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range l.loads() {
		total += n
	}
	l.mu.Lock()
	assigned := 0
	for _, h := range l.byActor {
		if h != "" {
			assigned++
		}
	}
	l.mu.Unlock()
	if total != assigned {
		t.Fatalf("loads sum to %d but %d actors are assigned", total, assigned)
	}
}

func TestHostMonitor(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := newHostMonitor(clock)
	m.observe("a", now.Add(2*time.Second))
	m.observe("b", now.Add(time.Second))
	m.observe("c", now.Add(-time.Second)) // already dead

	hosts, next := m.due(clock())
	if strings.Join(hosts, ",") != "c" || !next.Equal(now.Add(time.Second)) {
		t.Fatalf("due = %v, next %v; want [c], %v", hosts, next, now.Add(time.Second))
	}
	// A renewal moves b's expiry; a forgotten host never fires.
	m.observe("b", now.Add(3*time.Second))
	m.forget("a")
	mu.Lock()
	now = now.Add(2500 * time.Millisecond)
	mu.Unlock()
	if hosts, next := m.due(clock()); len(hosts) != 0 || !next.Equal(time.Unix(1003, 0)) {
		t.Fatalf("due = %v, next %v; want none, 1003", hosts, next)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if hosts, next := m.due(clock()); strings.Join(hosts, ",") != "b" || !next.IsZero() {
		t.Fatalf("due = %v, next %v; want [b], none", hosts, next)
	}
	// Fired once: b stays quiet until observed again.
	if hosts, _ := m.due(clock()); len(hosts) != 0 {
		t.Fatalf("b fired twice: %v", hosts)
	}
}

// TestHostMonitorRun runs the monitor's loop on the real clock: a host
// fires once its expiry passes, and the loop ends with its context.
func TestHostMonitorRun(t *testing.T) {
	m := newHostMonitor(time.Now)
	fired := make(chan string, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx, func(h string) { fired <- h }) }()
	t.Cleanup(func() { cancel(); <-done })

	start := time.Now()
	m.observe("soon", start.Add(50*time.Millisecond))
	m.observe("later", start.Add(time.Hour))
	select {
	case h := <-fired:
		if h != "soon" {
			t.Fatalf("fired %q first; want soon", h)
		}
		if time.Since(start) < 50*time.Millisecond {
			t.Fatalf("fired before the expiry")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the expired host never fired")
	}
	m.observe("dead", time.Now().Add(-time.Second))
	select {
	case h := <-fired:
		if h != "dead" {
			t.Fatalf("fired %q; want dead", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an already expired host never fired")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func TestActorChangedPredicate(t *testing.T) {
	base := func() *v1alpha1.Actor {
		a := &v1alpha1.Actor{}
		a.Generation = 1
		a.Labels = map[string]string{"x": "y"}
		a.Finalizers = []string{v1alpha1.ChainFlushFinalizer}
		a.Status.Phase = v1alpha1.PhaseRunning
		a.Status.HostPod = "h1"
		a.Status.Epoch = 1
		a.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Running", ObservedGeneration: 1}}
		a.Status.Chain = &v1alpha1.ChainStatus{Head: "aa", Length: 1}
		return a
	}
	tests := map[string]struct {
		change func(*v1alpha1.Actor)
		want   bool
	}{
		"nothing":             {change: func(*v1alpha1.Actor) {}, want: false},
		"chain head only":     {change: func(a *v1alpha1.Actor) { a.Status.Chain = &v1alpha1.ChainStatus{Head: "bb", Length: 2} }, want: false},
		"lastError only":      {change: func(a *v1alpha1.Actor) { a.Status.LastError = "boom" }, want: false},
		"generation":          {change: func(a *v1alpha1.Actor) { a.Generation = 2 }, want: true},
		"deletion":            {change: func(a *v1alpha1.Actor) { now := metav1.Now(); a.DeletionTimestamp = &now }, want: true},
		"label":               {change: func(a *v1alpha1.Actor) { a.Labels = nil }, want: true},
		"finalizers":          {change: func(a *v1alpha1.Actor) { a.Finalizers = nil }, want: true},
		"phase (host failed)": {change: func(a *v1alpha1.Actor) { a.Status.Phase = v1alpha1.PhaseFailed }, want: true},
		"hostPod":             {change: func(a *v1alpha1.Actor) { a.Status.HostPod = "" }, want: true},
		"epoch":               {change: func(a *v1alpha1.Actor) { a.Status.Epoch = 2 }, want: true},
		"Ready reason (Stopped)": {change: func(a *v1alpha1.Actor) {
			a.Status.Conditions[0].Status, a.Status.Conditions[0].Reason = metav1.ConditionFalse, v1alpha1.ReasonStopped
		}, want: true},
		"Ready message only": {change: func(a *v1alpha1.Actor) { a.Status.Conditions[0].Message = "hi" }, want: false},
		"Ready removed":      {change: func(a *v1alpha1.Actor) { a.Status.Conditions = nil }, want: true},
	}
	p := actorChanged()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n := base()
			tc.change(n)
			if got := p.Update(event.UpdateEvent{ObjectOld: base(), ObjectNew: n}); got != tc.want {
				t.Fatalf("predicate = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestSyncAssignedLabel(t *testing.T) {
	tests := map[string]struct {
		labels  map[string]string
		hostPod string
		want    map[string]string
	}{
		"adds":                {labels: nil, hostPod: "h1", want: map[string]string{v1alpha1.AssignedHostLabel: "h1"}},
		"replaces":            {labels: map[string]string{v1alpha1.AssignedHostLabel: "h0", "app": "x"}, hostPod: "h1", want: map[string]string{v1alpha1.AssignedHostLabel: "h1", "app": "x"}},
		"removes when unset":  {labels: map[string]string{v1alpha1.AssignedHostLabel: "h0", "app": "x"}, want: map[string]string{"app": "x"}},
		"leaves others alone": {labels: map[string]string{"app": "x"}, want: map[string]string{"app": "x"}},
		"keeps a correct one": {labels: map[string]string{v1alpha1.AssignedHostLabel: "h1"}, hostPod: "h1", want: map[string]string{v1alpha1.AssignedHostLabel: "h1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := &v1alpha1.Actor{}
			a.Labels = tc.labels
			a.Status.HostPod = tc.hostPod
			syncAssignedLabel(a)
			if len(a.Labels) != len(tc.want) {
				t.Fatalf("labels %v; want %v", a.Labels, tc.want)
			}
			for k, v := range tc.want {
				if a.Labels[k] != v {
					t.Fatalf("labels %v; want %v", a.Labels, tc.want)
				}
			}
		})
	}
}

func TestIndexHostPod(t *testing.T) {
	now := metav1.Now()
	tests := map[string]struct {
		a    v1alpha1.Actor
		want []string
	}{
		"assigned":   {a: v1alpha1.Actor{Status: v1alpha1.ActorStatus{HostPod: "h1"}}, want: []string{"h1"}},
		"waiting":    {a: v1alpha1.Actor{}, want: []string{unscheduledKey}},
		"suspended":  {a: v1alpha1.Actor{Spec: v1alpha1.ActorSpec{Suspend: true}}},
		"deleted":    {a: v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}},
		"deleted on": {a: v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: v1alpha1.ActorStatus{HostPod: "h1"}}, want: []string{"h1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := indexHostPod(&tc.a)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("index %q; want %q", got, tc.want)
			}
		})
	}
}

// TestEventNotesFitTheAPI: whatever a phase puts in a note (here a host's
// 5000-byte message of multibyte text, wrapped in the manager's words), the
// Event queued carries at most what the API server accepts, cut on a rune
// boundary. TestEventNotesOnTheAPIServer checks it against a real one.
func TestEventNotesFitTheAPI(t *testing.T) {
	s := &scope{}
	long := strings.Repeat("é", 2500)
	s.event("Warning", v1alpha1.EventRestarting, "Restart", "restart 1 on host %s (epoch %d) after its backoff; it had stopped: %s", "h", 2, long)
	s.event("Normal", v1alpha1.EventPlaced, "Place", "%s", "short")
	// Invalid bytes take three on the wire each, as U+FFFD: counted so.
	s.event("Warning", v1alpha1.EventRestarting, "Restart", "%s", strings.Repeat("\xff", 1000))
	if len(s.events) != 3 {
		t.Fatalf("%d events", len(s.events))
	}
	note := s.events[0].note
	if len(note) > v1alpha1.MaxEventNoteBytes || !utf8.ValidString(note) || !strings.HasPrefix(note, "restart 1 on host h (epoch 2)") {
		t.Errorf("note of %d bytes (valid UTF-8 %v): %.80q...", len(note), utf8.ValidString(note), note)
	}
	if s.events[1].note != "short" {
		t.Errorf("a short note changed: %q", s.events[1].note)
	}
	if note := s.events[2].note; len(note) > v1alpha1.MaxEventNoteBytes || !utf8.ValidString(note) {
		t.Errorf("invalid UTF-8 note: %d bytes, valid UTF-8 %v", len(note), utf8.ValidString(note))
	}
}
