//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	theaterv1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// Environment of the archive steps, which hack/e2e-local.sh sets: the
// pods of the local cluster reach the node's bridge address, and its host
// directories are this machine's.
const (
	// s3AddrEnv is the address the suite's S3 server listens on, one the
	// host pods reach (the local cluster's bridge, 10.244.0.1). Unset: the
	// suite installs no archive and skips the archive steps.
	s3AddrEnv = "TROUPE_E2E_S3_ADDR"
	// localNodeEnv=1 says the cluster's one node is this machine, so that
	// the suite can delete the hosts' data directory itself.
	localNodeEnv = "TROUPE_E2E_LOCAL_NODE"
)

// archiveCredentials is the Secret the chart's archive.credentialsSecret
// names. Not named troupe-*: the uninstall step would count it as a
// leftover of the release, which it is not.
const archiveCredentials = "e2e-archive-credentials"

// e2eArchive is the S3 server the suite's hosts archive to.
type e2eArchive struct {
	srv     *s3test.Server
	store   *objstore.S3
	bucket  string
	dataDir string // the hosts' data directory on this machine, "" when not local
}

// startArchive starts versitygw where the host pods reach it, makes the
// bucket and the credentials Secret, and returns the chart values that
// point the installation at it; nil values and no archive when the
// environment does not ask for one.
func (s *suite) startArchive(t *testing.T) []string {
	ip := os.Getenv(s3AddrEnv)
	if ip == "" {
		t.Logf("%s is not set: no archive (the archive steps are skipped)", s3AddrEnv)
		return nil
	}
	srv := s3test.StartOn(t, ip)
	store := srv.Bucket(t, "e2e")
	a := &e2eArchive{srv: srv, store: store, bucket: store.Bucket()}
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS}}
	if err := s.kube.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s for the archive's credentials: %v", systemNS, err)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: archiveCredentials},
		StringData: map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey},
	}
	if err := s.kube.Create(ctx, sec); err != nil {
		t.Fatalf("creating the archive's credentials: %v", err)
	}
	t.Cleanup(func() {
		_ = s.kube.Delete(context.Background(), sec)
	})
	values := []string{
		"--set", "archive.enabled=true",
		"--set", "archive.endpoint=" + srv.Endpoint,
		"--set", "archive.bucket=" + a.bucket,
		"--set", "archive.prefix=e2e",
		"--set", "archive.region=us-east-1",
		"--set", "archive.pathStyle=true",
		"--set", "archive.credentialsSecret.name=" + archiveCredentials,
		// Uploads every 2s keep the steps short; the default is 10s.
		"--set", "archive.recoveryPoint=2s",
	}
	if os.Getenv(localNodeEnv) == "1" {
		// A directory of the suite's own, so that deleting it deletes
		// nothing else on the machine.
		a.dataDir = filepath.Join(s.tmp, "host-data")
		values = append(values, "--set", "host.dataHostPath="+a.dataDir)
	}
	s.archive = a
	return values
}

// archiveRestore: the host's data directory is lost. The host pod is
// taken off the node (a planned move: it uploads what the archive lacks
// before it exits), its directory deleted, and a new host pod starts with
// nothing on the node; every actor continues from the archive, with the
// state it had (hello's run count goes on) and no event lost (its new
// segment links to the head the status had).
func (s *suite) archiveRestore(t *testing.T) {
	if s.archive == nil || s.archive.dataDir == "" {
		t.Skipf("needs the archive (%s) and the node's data directory on this machine (%s=1)", s3AddrEnv, localNodeEnv)
	}
	ctx := t.Context()
	before := s.snapshots(t)
	runs := helloCount(t, before["hello"].chain)
	var olds []string
	for _, sn := range before {
		olds = append(olds, sn.hostPod)
	}

	start := time.Now()
	restore := s.takeHostsOffNodes(t)
	poll(t, 2*time.Minute, 250*time.Millisecond, "the host pods to be gone", func(ctx context.Context) (bool, string, error) {
		var pods corev1.PodList
		if err := s.kube.List(ctx, &pods, client.InNamespace(systemNS), client.MatchingLabels(hostLabels())); err != nil {
			return false, err.Error(), nil
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d host pods", len(pods.Items)), nil
	})
	// Everything the old host wrote is in the archive now: its shutdown
	// uploaded the rest.
	for _, name := range sampleActors {
		var a theaterv1alpha1.Actor
		if err := s.kube.Get(ctx, client.ObjectKey{Namespace: sampleNS, Name: name}, &a); err != nil {
			t.Fatal(err)
		}
		h, err := archive.Resolve(ctx, s.archive.store, a.Status.ActorID)
		if err != nil {
			t.Fatalf("resolving %s's archive: %v", name, err)
		}
		got := "(none)"
		if tip := h.Tip(); tip != nil {
			got = tip.Head
		}
		if want := a.Status.Chain.Head; got != want {
			t.Errorf("%s: the archive ends at %s after its host shut down, the status at %s: a planned move must upload everything", name, got, want)
		}
	}
	if err := os.RemoveAll(s.archive.dataDir); err != nil {
		t.Fatalf("deleting the hosts' data directory: %v", err)
	}
	t.Logf("host pods gone in %v; deleted %s", time.Since(start).Round(10*time.Millisecond), s.archive.dataDir)
	restore()
	s.readyHostPods(t, olds)
	chains := s.continued(t, before, sampleActors)
	t.Logf("actors Ready again %v after the host was taken off", time.Since(start).Round(10*time.Millisecond))

	for _, name := range sampleActors {
		c := chains[name]
		first := c.events[0]
		if first.Kind != chain.KindSegmentStart {
			t.Errorf("%s: its chain on the empty node starts with %s, want a SegmentStart", name, first.Kind)
			continue
		}
		var seg struct {
			PreviousHead   string `json:"previousHead"`
			PreviousLength int64  `json:"previousLength"`
			StateRestored  bool   `json:"stateRestored"`
			StateLost      bool   `json:"stateLost"`
		}
		if err := json.Unmarshal(first.Data, &seg); err != nil {
			t.Fatalf("%s: SegmentStart data %q: %v", name, first.Data, err)
		}
		old := before[name]
		// The settled snapshot's head is where the old host stopped, unless
		// the actor moved on before the shutdown (a tick): then later.
		if seg.PreviousLength < old.length || seg.StateLost {
			t.Errorf("%s: restored from %s (%d events), stateLost=%v; the status had %s (%d): a planned move must lose nothing",
				name, seg.PreviousHead, seg.PreviousLength, seg.StateLost, old.head, old.length)
		}
	}
	if got := helloCount(t, chains["hello"]); got != runs+1 {
		t.Errorf("hello's run count is %d after its node lost its data, was %d: want %d (restored from the archive)", got, runs, runs+1)
	}
}

// restoredSegment reports whether a SegmentStart says the run restored
// the actor's state from the archive.
func restoredSegment(ev chain.Event) bool {
	var seg struct {
		StateRestored bool `json:"stateRestored"`
	}
	return json.Unmarshal(ev.Data, &seg) == nil && seg.StateRestored
}

// takeHostsOffNodes makes the host DaemonSet run nowhere (a node selector
// no node has) and returns what puts it back.
func (s *suite) takeHostsOffNodes(t *testing.T) (restore func()) {
	t.Helper()
	ctx := t.Context()
	var ds appsv1.DaemonSet
	key := client.ObjectKey{Namespace: systemNS, Name: hostName}
	if err := s.kube.Get(ctx, key, &ds); err != nil {
		t.Fatal(err)
	}
	orig := ds.Spec.Template.Spec.NodeSelector
	patch := client.MergeFrom(ds.DeepCopy())
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"troupe.dev/e2e-no-node": "true"}
	if err := s.kube.Patch(ctx, &ds, patch); err != nil {
		t.Fatalf("taking the hosts off the nodes: %v", err)
	}
	return func() {
		var cur appsv1.DaemonSet
		if err := s.kube.Get(ctx, key, &cur); err != nil {
			t.Fatal(err)
		}
		upd := cur.DeepCopy()
		upd.Spec.Template.Spec.NodeSelector = orig
		if err := s.kube.Update(ctx, upd); err != nil {
			t.Fatalf("putting the hosts back: %v", err)
		}
	}
}

// hostLabels selects the host pods (hostSelector as a map).
func hostLabels() map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(hostSelector, ",") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// archivedBeforeDelete returns each sample Actor's id and chain length
// before the uninstall deletes it; nil without an archive.
func (s *suite) archivedBeforeDelete(t *testing.T) map[string]snapshot {
	if s.archive == nil {
		return nil
	}
	out := map[string]snapshot{}
	for _, name := range sampleActors {
		var a theaterv1alpha1.Actor
		if err := s.kube.Get(t.Context(), client.ObjectKey{Namespace: sampleNS, Name: name}, &a); err != nil {
			t.Fatal(err)
		}
		if a.Status.Chain == nil {
			t.Fatalf("%s has no chain in its status", name)
		}
		out[name] = snapshot{actorID: a.Status.ActorID, head: a.Status.Chain.Head, length: a.Status.Chain.Length}
	}
	return out
}

// archivedAfterDelete: deleting an Actor uploads its chain before the
// host lets it go, so the archive holds at least what the status had, and
// verifies end to end, across the epochs and nodes of the whole suite.
func (s *suite) archivedAfterDelete(t *testing.T, before map[string]snapshot) {
	for name, sn := range before {
		rep, err := archive.Verify(t.Context(), s.archive.store, sn.actorID)
		if err != nil {
			t.Errorf("%s's archive (actor %s) after the delete: %v", name, sn.actorID, err)
			continue
		}
		if int64(rep.Length) < sn.length {
			t.Errorf("%s's archive holds %d events after the delete; its status had %d before it", name, rep.Length, sn.length)
		}
		// The suite archived from the Actor's first event on: the whole
		// history is there, from seq 0.
		if rep.Events != rep.Length {
			t.Errorf("%s's archive holds %d events of a history of %d: it starts at a %s, not at the first event", name, rep.Events, rep.Length, rep.OriginKind)
		}
		t.Logf("%s: the archive verifies: %d events in %d segments over epochs %v", name, rep.Length, len(rep.History.Segments), rep.History.Epochs)
	}
}
