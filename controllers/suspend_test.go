package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/placement"
)

// TestReconcileSuspend drives the suspend phase with the hosts given, no
// API server: when it keeps the assignment for the host's final chain
// head, and when it lets go.
func TestReconcileSuspend(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 30, 0, time.UTC)
	const timeout = time.Minute
	live := []placement.Host{{Name: "h1", Node: "n1", Expiry: now.Add(10 * time.Second), Capacity: 10}}
	expired := []placement.Host{{Name: "h1", Node: "n1", Expiry: now.Add(-time.Second), Capacity: 10}}
	cond := func(typ string, status metav1.ConditionStatus, reason string, at time.Time) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: "m", LastTransitionTime: metav1.NewTime(at)}
	}
	assigned := func(phase v1alpha1.Phase, conds ...metav1.Condition) v1alpha1.ActorStatus {
		return v1alpha1.ActorStatus{
			ActorID: "id", HostPod: "h1", NodeName: "n1", Epoch: 3, Phase: phase, Conditions: conds,
			Chain: &v1alpha1.ChainStatus{Head: testHead, HeadShort: v1alpha1.ShortHead(testHead), Length: 42},
		}
	}
	running := cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRunning, now.Add(-time.Hour))
	placedCond := cond(v1alpha1.ConditionScheduled, metav1.ConditionTrue, v1alpha1.ReasonAssigned, now.Add(-time.Hour))
	suspendingSince := func(at time.Time) metav1.Condition {
		return cond(v1alpha1.ConditionScheduled, metav1.ConditionFalse, v1alpha1.ReasonSuspending, at)
	}
	// waitingSince: the manager has waited for the host since at.
	waitingSince := func(st v1alpha1.ActorStatus, at time.Time) v1alpha1.ActorStatus {
		t := metav1.NewTime(at)
		st.SuspendRequestTime = &t
		return st
	}
	stoppedCond := cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonStopped, now.Add(-time.Second))

	tests := map[string]struct {
		suspend bool
		status  v1alpha1.ActorStatus
		hosts   []placement.Host

		wantHost      string
		wantPhase     v1alpha1.Phase
		wantScheduled string // reason
		wantReady     string // reason
		wantStop      bool
		wantRequeue   time.Duration
		wantEvent     string // type + ": " + a part of the note; "" for none
		wantSince     time.Time
	}{
		"live host: asked to stop, the assignment stays": {
			suspend: true, status: assigned(v1alpha1.PhaseRunning, placedCond, running), hosts: live,
			wantHost: "h1", wantPhase: v1alpha1.PhaseRunning, wantScheduled: v1alpha1.ReasonSuspending, wantReady: v1alpha1.ReasonRunning,
			wantStop: true, wantRequeue: timeout, wantEvent: "Normal: stopping it on host h1 (epoch 3)", wantSince: now,
		},
		"live host: still waiting, until the timeout": {
			suspend: true, status: waitingSince(assigned(v1alpha1.PhaseRunning, suspendingSince(now.Add(-10*time.Second)), running), now.Add(-10*time.Second)), hosts: live,
			wantHost: "h1", wantPhase: v1alpha1.PhaseRunning, wantScheduled: v1alpha1.ReasonSuspending, wantReady: v1alpha1.ReasonRunning,
			// Counted from the second after the transition, as the API
			// server keeps it.
			wantStop: true, wantRequeue: timeout - 9*time.Second, wantSince: now.Add(-10 * time.Second),
		},
		"a starting actor waits for its host too": {
			suspend: true, status: assigned(v1alpha1.PhaseScheduled, placedCond, cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonStarting, now)), hosts: live,
			wantHost: "h1", wantPhase: v1alpha1.PhaseScheduled, wantScheduled: v1alpha1.ReasonSuspending, wantReady: v1alpha1.ReasonStarting,
			wantStop: true, wantRequeue: timeout, wantEvent: "Normal: stopping it on host h1", wantSince: now,
		},
		"the host reported Stopped: suspended with its head": {
			suspend: true, status: assigned(v1alpha1.PhaseRunning, suspendingSince(now.Add(-time.Second)), stoppedCond), hosts: live,
			wantPhase: v1alpha1.PhaseSuspended, wantScheduled: v1alpha1.ReasonSuspended, wantReady: v1alpha1.ReasonSuspended,
			wantStop: true, wantEvent: "Normal: host h1 stopped the actor and published its final chain head (chain head 3f8a1c2b4d5e, length 42)",
		},
		"the host's lease expired: suspended at once": {
			suspend: true, status: assigned(v1alpha1.PhaseRunning, placedCond, running), hosts: expired,
			wantPhase: v1alpha1.PhaseSuspended, wantScheduled: v1alpha1.ReasonSuspended, wantReady: v1alpha1.ReasonSuspended,
			wantStop: true, wantEvent: "Warning: host h1 is gone, so the final chain head could not be published; status keeps the last reported chain head 3f8a1c2b4d5e",
		},
		"the host's Lease is gone: suspended at once": {
			suspend: true, status: assigned(v1alpha1.PhaseRunning, suspendingSince(now.Add(-time.Second)), running), hosts: []placement.Host{},
			wantPhase: v1alpha1.PhaseSuspended, wantScheduled: v1alpha1.ReasonSuspended, wantReady: v1alpha1.ReasonSuspended,
			wantStop: true, wantEvent: "Warning: host h1 is gone",
		},
		"no answer within the flush timeout": {
			suspend: true, status: waitingSince(assigned(v1alpha1.PhaseRunning, suspendingSince(now.Add(-timeout-2*time.Second)), running), now.Add(-timeout-2*time.Second)), hosts: live,
			wantPhase: v1alpha1.PhaseSuspended, wantScheduled: v1alpha1.ReasonSuspended, wantReady: v1alpha1.ReasonSuspended,
			wantStop: true, wantEvent: "Warning: host h1 did not report the actor Stopped within 1m0s, so the final chain head could not be published",
		},
		"a run that ended published its head with its end": {
			suspend: true, status: assigned(v1alpha1.PhaseFailed, placedCond, cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonBackOff, now)), hosts: live,
			wantPhase: v1alpha1.PhaseSuspended, wantScheduled: v1alpha1.ReasonSuspended, wantReady: v1alpha1.ReasonSuspended,
			wantStop: true, wantEvent: "Normal: suspended: its run on host h1 (epoch 3) had ended; chain head 3f8a1c2b4d5e",
		},
		"created suspended": {
			suspend: true, status: v1alpha1.ActorStatus{ActorID: "id", Phase: v1alpha1.PhasePending},
			wantPhase: v1alpha1.PhaseSuspended, wantScheduled: v1alpha1.ReasonSuspended, wantReady: v1alpha1.ReasonSuspended,
			wantStop: true, wantEvent: "Normal: suspended",
		},
		"already suspended: nothing to say": {
			suspend: true, status: v1alpha1.ActorStatus{ActorID: "id", Phase: v1alpha1.PhaseSuspended, Conditions: []metav1.Condition{
				cond(v1alpha1.ConditionScheduled, metav1.ConditionFalse, v1alpha1.ReasonSuspended, now.Add(-time.Hour)),
				cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSuspended, now.Add(-time.Hour)),
			}},
			wantPhase: v1alpha1.PhaseSuspended, wantScheduled: v1alpha1.ReasonSuspended, wantReady: v1alpha1.ReasonSuspended, wantStop: true,
		},
		"resumed: placed again": {
			status: v1alpha1.ActorStatus{ActorID: "id", Phase: v1alpha1.PhaseSuspended, Conditions: []metav1.Condition{
				cond(v1alpha1.ConditionScheduled, metav1.ConditionFalse, v1alpha1.ReasonSuspended, now.Add(-time.Hour)),
				cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSuspended, now.Add(-time.Hour)),
			}},
			wantPhase: v1alpha1.PhasePending, wantScheduled: v1alpha1.ReasonSuspended, wantReady: v1alpha1.ReasonSuspended,
		},
		"resumed before the host stopped it: the assignment stands": {
			status: assigned(v1alpha1.PhaseRunning, suspendingSince(now.Add(-time.Second)), running), hosts: live,
			wantHost: "h1", wantPhase: v1alpha1.PhaseRunning, wantScheduled: v1alpha1.ReasonAssigned, wantReady: v1alpha1.ReasonRunning,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := &v1alpha1.Actor{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", Generation: 2},
				Spec:       v1alpha1.ActorSpec{Suspend: tc.suspend},
				Status:     *tc.status.DeepCopy(),
			}
			s := &scope{key: types.NamespacedName{Namespace: "ns", Name: "a"}, orig: a.DeepCopy(), actor: a, now: now, log: logr.Discard(), hosts: tc.hosts}
			r := &ActorReconciler{FlushTimeout: timeout}
			stop, err := r.reconcileSuspend(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			if stop != tc.wantStop {
				t.Errorf("stop = %v; want %v", stop, tc.wantStop)
			}
			if a.Status.HostPod != tc.wantHost || (tc.wantHost == "") != (a.Status.NodeName == "") {
				t.Errorf("assigned to %q on %q; want %q", a.Status.HostPod, a.Status.NodeName, tc.wantHost)
			}
			if a.Status.Phase != tc.wantPhase {
				t.Errorf("phase %s; want %s", a.Status.Phase, tc.wantPhase)
			}
			sched := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionScheduled)
			if sched == nil || sched.Reason != tc.wantScheduled {
				t.Errorf("Scheduled %+v; want reason %s", sched, tc.wantScheduled)
			}
			if ready := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady); ready == nil || ready.Reason != tc.wantReady {
				t.Errorf("Ready %+v; want reason %s", ready, tc.wantReady)
			}
			// Conditions are dated by the reconciler's clock, not the
			// machine's.
			for _, c := range a.Status.Conditions {
				before := meta.FindStatusCondition(tc.status.Conditions, c.Type)
				if (before == nil || before.Status != c.Status) && !c.LastTransitionTime.Time.Equal(now) {
					t.Errorf("%s turned %s at %v; want the reconciler's now, %v", c.Type, c.Status, c.LastTransitionTime, now)
				}
			}
			switch got := a.Status.SuspendRequestTime; {
			case tc.wantSince.IsZero() && got != nil:
				t.Errorf("suspendRequestTime %v; want none (not waiting)", got)
			case !tc.wantSince.IsZero() && (got == nil || !got.Time.Equal(tc.wantSince)):
				t.Errorf("suspendRequestTime %v; want %v (the timeout counts from it)", got, tc.wantSince)
			}
			if s.after != tc.wantRequeue {
				t.Errorf("requeue after %s; want %s", s.after, tc.wantRequeue)
			}
			// Whatever happens, the chain stays as the host left it.
			if (tc.status.Chain == nil) != (a.Status.Chain == nil) || (a.Status.Chain != nil && *a.Status.Chain != *tc.status.Chain) {
				t.Errorf("chain %+v; want %+v", a.Status.Chain, tc.status.Chain)
			}
			if a.Status.Epoch != tc.status.Epoch || a.Status.ActorID != tc.status.ActorID {
				t.Errorf("epoch %d, id %q; want %d, %q", a.Status.Epoch, a.Status.ActorID, tc.status.Epoch, tc.status.ActorID)
			}
			var got []string
			for _, e := range s.events {
				if e.reason != v1alpha1.EventSuspended {
					t.Errorf("event reason %s; want %s", e.reason, v1alpha1.EventSuspended)
				}
				got = append(got, e.eventType+": "+e.note)
			}
			if tc.wantEvent == "" {
				if len(got) > 0 {
					t.Errorf("events %q; want none", got)
				}
				return
			}
			typ, note, _ := strings.Cut(tc.wantEvent, ": ")
			if len(got) != 1 || !strings.HasPrefix(got[0], typ+": ") || !strings.Contains(got[0], note) {
				t.Errorf("events %q; want one %s event containing %q", got, typ, note)
			}
		})
	}
}
