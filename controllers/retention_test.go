package controllers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// archived gives id an archive (a claimed epoch) and a name index entry,
// as a host does when it starts the actor.
func archived(t *testing.T, st objstore.Store, ns, name, id string) {
	t.Helper()
	ctx := t.Context()
	if _, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: id, Epoch: 1, Host: "host-a"}); err != nil {
		t.Fatal(err)
	}
	if err := archive.PutIndex(ctx, st, archive.IndexEntry{Namespace: ns, Name: name, ActorID: id, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func hasHistory(ctx context.Context, st objstore.Store, id string) error {
	_, err := archive.Resolve(ctx, st, id)
	return err
}

// testArchiveRetention: a deleted Actor's archive is kept for the
// retention (a tombstone in the store says since when), then removed with
// its name entry, by the leader's sweep, and nothing of the Actor created
// again under the same name (another id) goes with it.
func testArchiveRetention(t *testing.T, env *envtestutil.Env) {
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	clock := &testClock{now: time.Now()}
	h := newHarness(t, env, harnessOptions{leaderElection: true, tune: func(r *ActorReconciler) {
		r.Archive = &ArchiveSettings{Store: st, Where: "test", Retention: time.Hour, SweepInterval: 20 * time.Millisecond, Now: clock.Now,
			OrphanGrace: time.Minute}
	}})
	ctx := t.Context()
	g := NewWithT(t)
	idOf := func(name string) string {
		var id string
		h.eventually(name, func(g Gomega, x *v1alpha1.Actor) {
			g.Expect(x.Status.ActorID).NotTo(BeEmpty())
			id = x.Status.ActorID
		})
		return id
	}
	h.actor("counter")
	oldID := idOf("counter")
	archived(t, st, h.ns, "counter", oldID)

	a, err := h.get("counter")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.c.Delete(ctx, a)).To(Succeed())
	h.g.Eventually(func() error { _, err := h.get("counter"); return err }).Should(Satisfy(isNotFound))
	tombs, _, err := archive.Tombstones(ctx, st)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tombs).To(HaveLen(1))
	g.Expect(tombs[0].ActorID).To(Equal(oldID))
	g.Expect(tombs[0].Namespace + "/" + tombs[0].Name).To(Equal(h.ns + "/counter"))
	g.Expect(tombs[0].DeletedAt).To(BeTemporally("~", a.CreationTimestamp.Time, time.Minute))

	// The same name again: another id, its own archive.
	h.actor("counter")
	newID := idOf("counter")
	g.Expect(newID).NotTo(Equal(oldID))
	archived(t, st, h.ns, "counter", newID)

	// Sweeps within the retention keep the old archive.
	swept := testutil.ToFloat64(sweepsTotal.WithLabelValues("ok"))
	h.g.Eventually(func() float64 { return testutil.ToFloat64(sweepsTotal.WithLabelValues("ok")) }).Should(BeNumerically(">=", swept+3))
	g.Expect(hasHistory(ctx, st, oldID)).To(Succeed(), "removed within its retention")

	// Past it, the old archive, its name entry and tombstone go; the new
	// Actor's stay.
	expired := testutil.ToFloat64(archivesExpired)
	clock.advance(2 * time.Hour) // the clock began before the deletion
	// The tombstone goes last: once it is gone, the rest is.
	h.g.Eventually(func() ([]archive.Tombstone, error) { t, _, err := archive.Tombstones(ctx, st); return t, err }).Should(BeEmpty())
	g.Expect(hasHistory(ctx, st, oldID)).To(MatchError(archive.ErrNoHistory))
	g.Expect(hasHistory(ctx, st, newID)).To(Succeed())
	ids, err := archive.LookupName(ctx, st, h.ns, "counter")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids).To(HaveLen(1))
	g.Expect(ids[0].ActorID).To(Equal(newID))
	// Counted once Expire returns, just after the tombstone went: polled.
	h.g.Eventually(func() float64 { return testutil.ToFloat64(archivesExpired) }).Should(BeNumerically(">=", expired+1))
}

// testArchiveRetentionZero: with no retention, a deletion removes the
// archive at once (the tombstone pokes the sweep; its interval is an
// hour); a store that is down keeps the Actor, with a Warning, until the
// tombstone is written.
func testArchiveRetentionZero(t *testing.T, env *envtestutil.Env) {
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	h := newHarness(t, env, harnessOptions{tune: func(r *ActorReconciler) {
		// The tombstone outlives the archive by the grace: the sweep comes
		// back for it then, not an interval later.
		r.Archive = &ArchiveSettings{Store: st, Where: "test", Retention: 0, SweepInterval: time.Hour, OrphanGrace: 2 * time.Second}
	}})
	ctx := t.Context()
	g := NewWithT(t)
	for _, name := range []string{"brief", "patient"} {
		h.actor(name)
	}
	ids := map[string]string{}
	for _, name := range []string{"brief", "patient"} {
		h.eventually(name, func(g Gomega, x *v1alpha1.Actor) {
			g.Expect(x.Status.ActorID).NotTo(BeEmpty())
			ids[name] = x.Status.ActorID
		})
		archived(t, st, h.ns, name, ids[name])
	}

	a, err := h.get("brief")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.c.Delete(ctx, a)).To(Succeed())
	tombstones := func() ([]archive.Tombstone, error) { t, _, err := archive.Tombstones(ctx, st); return t, err }
	h.g.Eventually(func() error { return hasHistory(ctx, st, ids["brief"]) }).Should(MatchError(archive.ErrNoHistory))
	h.g.Eventually(tombstones).Should(BeEmpty()) // removed last
	g.Expect(hasHistory(ctx, st, ids["patient"])).To(Succeed())

	// The store is down: the deletion waits for its record, and says so.
	srv.Stop()
	p, err := h.get("patient")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.c.Delete(ctx, p)).To(Succeed())
	h.expectEvent("patient", v1alpha1.EventArchiveUnavailable, "did not take the deletion's record", "retrying")
	x, err := h.get("patient")
	g.Expect(err).NotTo(HaveOccurred(), "released without its tombstone")
	g.Expect(x.Finalizers).To(ContainElement(v1alpha1.ChainFlushFinalizer))
	srv.Restart()
	h.g.Eventually(func() error { _, err := h.get("patient"); return err }, 2*time.Minute).Should(Satisfy(isNotFound))
	h.g.Eventually(func() error { return hasHistory(ctx, st, ids["patient"]) }).Should(MatchError(archive.ErrNoHistory))
	h.g.Eventually(tombstones).Should(BeEmpty())
	if _, err := h.get("brief"); !isNotFound(err) {
		t.Fatalf("brief: %v", errors.Join(err, errors.New("want it gone")))
	}
}
