package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
)

// A lifecycle write queued behind many head writes is made next, not
// after them: with one worker per queue, at most the head write a worker
// already holds goes before it.
func TestPublisherLifecycleWritesGoFirst(t *testing.T) {
	const pod, n = "host-a", 50
	sch := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for i := range n + 1 {
		a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("a%02d", i)}}
		a.Status.HostPod, a.Status.Epoch = pod, 1
		objs = append(objs, a)
	}
	var (
		mu    sync.Mutex
		order []string
	)
	c := fake.NewClientBuilder().WithScheme(sch).WithObjects(objs...).WithStatusSubresource(&v1alpha1.Actor{}).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				mu.Lock()
				order = append(order, obj.GetName())
				mu.Unlock()
				return c.SubResource(sub).Update(ctx, obj, opts...)
			},
		}).Build()
	m := newHostMetrics(nil, func() float64 { return 0 }, nil)
	p := newPublisher(c, c, pod, time.Hour, 0, logr.Discard(), m)
	for i := range n {
		head := fmt.Sprintf("%064d", i)
		p.update(types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("a%02d", i)}, 1, false,
			func(v *view) { v.hasChain, v.head, v.length = true, head, 1 })
	}
	urgent := fmt.Sprintf("a%02d", n)
	p.update(types.NamespacedName{Namespace: "ns", Name: urgent}, 1, true, func(v *view) {
		v.phase = v1alpha1.PhaseRunning
		v.ready = &readyCond{status: metav1.ConditionTrue, reason: v1alpha1.ReasonRunning, message: "running"}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx, 1); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := len(order)
		mu.Unlock()
		if got == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes made", got, n+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	pos := -1
	for i, name := range order {
		if name == urgent {
			pos = i
		}
	}
	if pos > 1 {
		t.Fatalf("the lifecycle write was write %d of %d; want it first or second: %v", pos+1, len(order), order)
	}
	a := &v1alpha1.Actor{}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: urgent}, a); err != nil {
		t.Fatal(err)
	}
	if a.Status.Phase != v1alpha1.PhaseRunning {
		t.Fatalf("phase %q, want Running", a.Status.Phase)
	}
}

// TestReadyReasons: every failure the engine classifies gets a Ready
// reason named in api/v1alpha1; one it does not classify is the host's.
func TestReadyReasons(t *testing.T) {
	tests := map[string]struct {
		err  error
		want string
	}{
		"invalid module": {err: &actorhost.ActorError{Reason: actorhost.ReasonInvalidModule}, want: v1alpha1.ReasonComponentError},
		"missing export": {err: &actorhost.ActorError{Reason: actorhost.ReasonMissingExport}, want: v1alpha1.ReasonComponentError},
		"memory limit":   {err: &actorhost.ActorError{Reason: actorhost.ReasonMemoryLimit}, want: v1alpha1.ReasonMemoryLimit},
		"timeout":        {err: &actorhost.ActorError{Reason: actorhost.ReasonTimeout}, want: v1alpha1.ReasonCallTimeout},
		"trap":           {err: &actorhost.ActorError{Reason: actorhost.ReasonTrap}, want: v1alpha1.ReasonTrapped},
		"exit":           {err: &actorhost.ActorError{Reason: actorhost.ReasonExit}, want: v1alpha1.ReasonExited},
		"abi":            {err: &actorhost.ActorError{Reason: actorhost.ReasonABI}, want: v1alpha1.ReasonABIViolation},
		"init failed":    {err: &actorhost.ActorError{Reason: actorhost.ReasonInitFailed}, want: v1alpha1.ReasonInitFailed},
		"tick failed":    {err: &actorhost.ActorError{Reason: actorhost.ReasonTickFailed}, want: v1alpha1.ReasonTickFailed},
		"handler failed": {err: &actorhost.ActorError{Reason: actorhost.ReasonHandlerFailed}, want: v1alpha1.ReasonHandlerFailed},
		"host error":     {err: &actorhost.ActorError{Reason: actorhost.ReasonHostError}, want: v1alpha1.ReasonHostError},
		"canceled":       {err: &actorhost.ActorError{Reason: actorhost.ReasonCanceled}, want: v1alpha1.ReasonCanceled},
		"chain rate":     {err: &actorhost.ActorError{Reason: actorhost.ReasonChainRateLimit}, want: v1alpha1.ReasonChainRateLimit},
		"chain size":     {err: &actorhost.ActorError{Reason: actorhost.ReasonChainSizeLimit}, want: v1alpha1.ReasonChainSizeLimit},
		"disk pressure":  {err: &actorhost.ActorError{Reason: actorhost.ReasonDiskPressure}, want: v1alpha1.ReasonDiskPressure},
		"unclassified":   {err: errors.New("disk full"), want: v1alpha1.ReasonHostError},
		"a newer reason": {err: &actorhost.ActorError{Reason: "SomethingNew"}, want: "SomethingNew"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := readyReason(tc.err); got != tc.want {
				t.Fatalf("readyReason = %q, want %q", got, tc.want)
			}
		})
	}
	if len(readyReasons) != len(tests)-2 {
		t.Fatalf("readyReasons maps %d engine reasons; the table tests %d", len(readyReasons), len(tests)-2)
	}
}

// The StateLost and ArchiveGap conditions are set when a view carries a
// loss (a gap), set anew (a new transition time) only for another one,
// and left as they are by a view that carries none: nothing sets them back.
func TestViewAppliesStateLost(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	now := then.Add(time.Hour)
	kinds := map[string]struct {
		reason string
		set    func(v *view, msg string)
	}{
		v1alpha1.ConditionStateLost:  {v1alpha1.ReasonNoStateOnNode, func(v *view, msg string) { v.stateLost = msg }},
		v1alpha1.ConditionArchiveGap: {v1alpha1.ReasonEventsLost, func(v *view, msg string) { v.archiveGap = msg }},
	}
	for typ, kind := range kinds {
		earlier := metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: kind.reason, Message: "lost once", LastTransitionTime: then}
		tests := map[string]struct {
			before []metav1.Condition
			msg    string
			want   *metav1.Condition // nil: no such condition
		}{
			"no loss, none before": {},
			"a loss": {msg: "lost once",
				want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: kind.reason, Message: "lost once", LastTransitionTime: metav1.NewTime(now)}},
			"the same loss again": {before: []metav1.Condition{earlier}, msg: "lost once",
				want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: kind.reason, Message: "lost once", LastTransitionTime: then}},
			"another loss": {before: []metav1.Condition{earlier}, msg: "lost twice",
				want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: kind.reason, Message: "lost twice", LastTransitionTime: metav1.NewTime(now)}},
			"a run without a loss": {before: []metav1.Condition{earlier},
				want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: kind.reason, Message: "lost once", LastTransitionTime: then}},
		}
		for name, tc := range tests {
			t.Run(typ+"/"+name, func(t *testing.T) {
				st := &v1alpha1.ActorStatus{Conditions: append([]metav1.Condition(nil), tc.before...)}
				v := view{hasChain: true, head: "aa", length: 3}
				kind.set(&v, tc.msg)
				v.apply(st, now, "node-b")
				if st.Chain == nil || st.Chain.Node != "node-b" {
					t.Errorf("status.chain %+v, want it to name node-b", st.Chain)
				}
				got := meta.FindStatusCondition(st.Conditions, typ)
				if (got == nil) != (tc.want == nil) {
					t.Fatalf("%s condition %+v, want %+v", typ, got, tc.want)
				}
				if got != nil && (got.Status != tc.want.Status || got.Reason != tc.want.Reason || got.Message != tc.want.Message ||
					!got.LastTransitionTime.Equal(&tc.want.LastTransitionTime)) {
					t.Errorf("%s condition %+v, want %+v", typ, *got, *tc.want)
				}
				if len(st.Conditions) != len(tc.before) && tc.want != nil && len(tc.before) != 0 {
					t.Errorf("conditions %+v: one of a kind", st.Conditions)
				}
			})
		}
	}
}

// TestPublisherCapCoalescesHeads: under a host-wide cap, heads that move
// all the time cost at most the cap's writes, each write carries the
// newest head (so every final head is written once the moves stop), and
// a lifecycle write does not wait behind the heads.
func TestPublisherCapCoalescesHeads(t *testing.T) {
	const pod, n, perSecond = "host-a", 20, 5.0
	sch := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	key := func(i int) types.NamespacedName {
		return types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("a%02d", i)}
	}
	for i := range n + 1 {
		a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: key(i).Name}}
		a.Status.HostPod, a.Status.Epoch = pod, 1
		objs = append(objs, a)
	}
	var (
		mu      sync.Mutex
		writes  int
		written = map[string]time.Time{}
	)
	c := fake.NewClientBuilder().WithScheme(sch).WithObjects(objs...).WithStatusSubresource(&v1alpha1.Actor{}).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				mu.Lock()
				writes++
				written[obj.GetName()] = time.Now()
				mu.Unlock()
				return c.SubResource(sub).Update(ctx, obj, opts...)
			},
		}).Build()
	m := newHostMetrics(nil, func() float64 { return 0 }, nil)
	p := newPublisher(c, c, pod, 10*time.Millisecond, perSecond, logr.Discard(), m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx, 4); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// Every head moves every millisecond for two seconds; halfway, one
	// actor starts running (a lifecycle write).
	const flood = 2 * time.Second
	lengths := make([]uint64, n)
	var urgentAt time.Time
	begin := time.Now()
	for time.Since(begin) < flood {
		for i := range n {
			lengths[i]++
			head, length := fmt.Sprintf("%064d", lengths[i]), lengths[i]
			p.update(key(i), 1, false, func(v *view) { v.hasChain, v.head, v.length = true, head, length })
		}
		if urgentAt.IsZero() && time.Since(begin) > flood/2 {
			urgentAt = time.Now()
			p.update(key(n), 1, true, func(v *view) { v.phase = v1alpha1.PhaseRunning })
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(begin)
	mu.Lock()
	during, urgentWritten := writes, written[key(n).Name]
	mu.Unlock()
	// The cap and its burst (a second's worth), plus the lifecycle write.
	if limit := int(perSecond*took.Seconds()+perSecond) + 1; during > limit {
		t.Fatalf("%d writes in %s under a cap of %g/s; want at most %d", during, took, perSecond, limit)
	}
	// A round of head writes takes n/perSecond (4s): the lifecycle write
	// went ahead of it.
	if urgentWritten.IsZero() || urgentWritten.Sub(urgentAt) > time.Duration(n/perSecond)*time.Second/2 {
		t.Fatalf("the lifecycle write was made %s after it was asked for", urgentWritten.Sub(urgentAt))
	}
	// Every final head reaches the status, within the rounds the cap needs.
	deadline := time.Now().Add(time.Duration(n/perSecond)*time.Second + 10*time.Second)
	for i := range n {
		for {
			a := &v1alpha1.Actor{}
			if err := c.Get(context.Background(), key(i), a); err != nil {
				t.Fatal(err)
			}
			if a.Status.Chain != nil && a.Status.Chain.Length == int64(lengths[i]) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v, final length %d", key(i), a.Status.Chain, lengths[i])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	moves := uint64(0)
	for _, l := range lengths {
		moves += l
	}
	t.Logf("%d head moves of %d actors in %s: %d writes (cap %g/s); the lifecycle write took %s; final heads written %s after the moves stopped",
		moves, n, took.Round(time.Millisecond), during, perSecond, urgentWritten.Sub(urgentAt).Round(time.Millisecond), time.Since(begin.Add(took)).Round(time.Millisecond))
}
