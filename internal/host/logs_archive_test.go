package host

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/msgwire"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// readLogStream reads a log stream to its end: its records, and its last
// line when that is an EndOfStream or StreamError line (nil otherwise).
func readLogStream(t *testing.T, body io.ReadCloser) ([]msgwire.LogRecord, *msgwire.LogRecord, string) {
	t.Helper()
	defer body.Close()
	var recs []msgwire.LogRecord
	var last *msgwire.LogRecord
	var raw []byte
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, msgwire.MaxLogLineBytes)
	for sc.Scan() {
		raw = append(append(raw, sc.Bytes()...), '\n')
		var r msgwire.LogRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("a line of the stream does not parse: %v: %s", err, sc.Bytes())
		}
		if r.EndOfStream != "" || r.StreamError != "" {
			last = &r
			continue
		}
		recs = append(recs, r)
	}
	return recs, last, string(raw)
}

// TestPeerLogsFromArchive moves an actor that logged on node a (two runs,
// one record each, with a Secret's value in them) to node b, whose chain
// begins with a SegmentStart: b's log endpoint serves the two records
// from the archive (redacted, as the chain holds them, with the epoch
// that wrote them), then b's own, each once and in seq order, for every
// after= and tail= around the boundary; a store that cannot be read ends
// the stream with a StreamError line.
func TestPeerLogsFromArchive(t *testing.T) {
	s := newSuite(t)
	ca := newPeerCA(t)
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe")
	g := NewWithT(t)
	archived := withArchive(st, 300*time.Millisecond)
	a := s.startHost(t, withPeer(t, ca, ""), archived)
	secret := "s3cr3t-" + rand.String(16)
	g.Expect(a.c.Create(a.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "db"},
		StringData: map[string]string{"password": secret}})).To(Succeed())
	const name = "logmover"
	a.create(name, a.probeSpec(literal("LOG_VAR", "DB_PASSWORD"), fromSecret("DB_PASSWORD", "db", "password")))
	a.assign(name, a.pod, 1)
	a.waitReason(name, v1alpha1.ReasonRunning, 90*time.Second)
	// A second run on node a logs again (the probe logs as it starts);
	// a suspension uploads the rest of the chain before it is reported.
	a.setSuspend(name, true)
	a.waitReason(name, v1alpha1.ReasonStopped, 30*time.Second)
	first := a.get(name).Status.Chain.Length
	a.setSuspend(name, false)
	a.waitReason(name, v1alpha1.ReasonRunning, 60*time.Second)
	g.Eventually(func() int { return countKind(readEvents(t, a.chainFile(name)), chain.KindLog) }).WithTimeout(60 * time.Second).Should(Equal(2))
	a.setSuspend(name, true)
	// The second run's stop, not the first's still in status.
	g.Eventually(func() bool {
		act := a.get(name)
		c := meta.FindStatusCondition(act.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Reason == v1alpha1.ReasonStopped && act.Status.Chain != nil && act.Status.Chain.Length > first
	}).WithTimeout(30 * time.Second).Should(BeTrue())
	g.Expect(a.actor(name).State).NotTo(Equal("Running"))
	id := a.get(name).Status.ActorID
	length := uint64(a.get(name).Status.Chain.Length)
	g.Expect(countKind(readEvents(t, a.chainFile(name)), chain.KindLog)).To(Equal(2))
	g.Expect(uint64(len(readEvents(t, a.chainFile(name))))).To(Equal(length), "the status has node a's last head")
	g.Eventually(func() uint64 { return archivedLength(t, st, id) }).WithTimeout(30 * time.Second).Should(Equal(length))

	b := s.besides(t, a, withPeer(t, ca, ""), archived)
	b.assign(name, b.pod, 2)
	b.setSuspend(name, false)
	waitRunning(t, b, name, 2)
	g.Eventually(func() int { return countKind(readEvents(t, b.chainFile(name)), chain.KindLog) }).WithTimeout(60 * time.Second).Should(Equal(1))
	local := readEvents(t, b.chainFile(name))
	g.Expect(local[0].Kind).To(Equal(chain.KindSegmentStart), "node b holds none of node a's events")
	g.Expect(local[0].Seq).To(Equal(length))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gw := msgwire.NewClient(mustFiles(t, peerIdentity(t, ca, msgwire.GatewayCN)).ClientTLSConfig(msgwire.HostCN), msgwire.ClientOptions{})
	t.Cleanup(gw.Close)
	logs := func(q msgwire.LogQuery) ([]msgwire.LogRecord, *msgwire.LogRecord, string) {
		t.Helper()
		body, err := gw.Logs(ctx, b.host.peer.endpoint, 2, b.ns, name, q)
		g.Expect(err).NotTo(HaveOccurred())
		return readLogStream(t, body)
	}
	all, last, raw := logs(msgwire.LogQuery{})
	g.Expect(last).To(BeNil(), raw)
	g.Expect(raw).NotTo(ContainSubstring(secret))
	g.Expect(all).To(HaveLen(3), raw)
	for i, r := range all {
		g.Expect(r.Message).To(Equal("the value is [redacted]"), "record %d", i)
		g.Expect(r.ActorID).To(Equal(id))
		if i > 0 {
			g.Expect(r.Seq).To(BeNumerically(">", all[i-1].Seq), "in seq order, each once")
		}
	}
	g.Expect([]int64{all[0].Epoch, all[1].Epoch, all[2].Epoch}).To(Equal([]int64{1, 1, 2}), "the epoch that wrote each")
	g.Expect(all[1].Seq).To(BeNumerically("<", length), "from the archive")
	g.Expect(all[2].Seq).To(BeNumerically(">", length), "from node b's chain")

	seqs := func(recs []msgwire.LogRecord) []uint64 {
		var out []uint64
		for _, r := range recs {
			out = append(out, r.Seq)
		}
		return out
	}
	tail := func(n int) msgwire.LogQuery { return msgwire.LogQuery{Tail: n, HasTail: true} }
	after := func(n uint64) msgwire.LogQuery { return msgwire.LogQuery{After: n, HasAfter: true} }
	both := func(a, n int) msgwire.LogQuery {
		q := tail(n)
		q.After, q.HasAfter = all[a].Seq, true
		return q
	}
	want := seqs(all)
	for _, tc := range []struct {
		name string
		q    msgwire.LogQuery
		want []uint64
	}{
		{"after the first", after(all[0].Seq), want[1:]},
		{"after the archive's last", after(all[1].Seq), want[2:]},
		{"after the boundary", after(length - 1), want[2:]},
		{"after one before the first", after(all[0].Seq - 1), want},
		{"after the last", after(all[2].Seq), nil},
		{"tail 0", tail(0), nil},
		{"tail 1: local only", tail(1), want[2:]},
		{"tail 2: one archived", tail(2), want[1:]},
		{"tail 3", tail(3), want},
		{"tail over the records", tail(100), want},
		{"tail 5 after the first", both(0, 5), want[1:]},
		{"tail 1 after the first", both(0, 1), want[2:]},
		{"since the second", msgwire.LogQuery{Since: all[1].Time}, want[1:]},
		{"level warn", msgwire.LogQuery{Level: "warn"}, nil},
	} {
		got, last, raw := logs(tc.q)
		g.Expect(last).To(BeNil(), "%s: %s", tc.name, raw)
		g.Expect(seqs(got)).To(Equal(tc.want), "%s: %s", tc.name, raw)
	}

	// Followed: the archived records, then the local ones, then it waits.
	fctx, fcancel := context.WithCancel(ctx)
	body, err := gw.Logs(fctx, b.host.peer.endpoint, 2, b.ns, name, msgwire.LogQuery{Follow: true})
	g.Expect(err).NotTo(HaveOccurred())
	br := bufio.NewReader(body)
	for i := range all {
		line, err := msgwire.ReadLogLine(br, nil)
		g.Expect(err).NotTo(HaveOccurred())
		var r msgwire.LogRecord
		g.Expect(json.Unmarshal(line, &r)).To(Succeed())
		g.Expect(r.Seq).To(Equal(all[i].Seq))
	}
	fcancel()
	_ = body.Close()

	// The store down: the stream says why it ends, the host goes on.
	srv.Stop()
	_, last, raw = logs(msgwire.LogQuery{})
	g.Expect(last).NotTo(BeNil(), raw)
	g.Expect(last.StreamError).To(ContainSubstring("archived log records"))
	_, last, raw = logs(tail(1))
	g.Expect(last).To(BeNil(), "the local chain holds the last record: no read of the archive: %s", raw)
	srv.Restart()
}

func countKind(evs []chain.Event, k chain.Kind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}
