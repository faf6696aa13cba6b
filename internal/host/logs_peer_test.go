package host

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/gateway"
	"github.com/troupe-dev/troupe/internal/msgroute"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// TestPeerLogs reads a real actor's logs on its host's peer endpoint as
// the gateway does: the line it logged with a Secret's value in it comes
// redacted (as the chain holds it), only the gateway's identity may read,
// a wrong epoch is NotHere, and a followed stream ends when the run does.
func TestPeerLogs(t *testing.T) {
	s := newSuite(t)
	ca := newPeerCA(t)
	g := NewWithT(t)
	h := s.startHost(t, withPeer(t, ca, ""))
	secret := "s3cr3t-" + rand.String(16)
	g.Expect(h.c.Create(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "db"},
		StringData: map[string]string{"password": secret}})).To(Succeed())
	h.create("probe-log", h.probeSpec(literal("LOG_VAR", "DB_PASSWORD"), fromSecret("DB_PASSWORD", "db", "password")))
	h.assign("probe-log", h.pod, 1)
	h.waitReason("probe-log", v1alpha1.ReasonRunning, 90*time.Second)
	actorID := h.get("probe-log").Status.ActorID

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gw := msgwire.NewClient(mustFiles(t, peerIdentity(t, ca, msgwire.GatewayCN)).ClientTLSConfig(msgwire.HostCN), msgwire.ClientOptions{})
	t.Cleanup(gw.Close)
	endpoint := h.host.peer.endpoint
	read := func(body io.ReadCloser) ([]msgwire.LogRecord, string) {
		defer body.Close()
		var recs []msgwire.LogRecord
		var raw []byte
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			raw = append(append(raw, sc.Bytes()...), '\n')
			var r msgwire.LogRecord
			g.Expect(json.Unmarshal(sc.Bytes(), &r)).To(Succeed())
			recs = append(recs, r)
		}
		return recs, string(raw)
	}
	body, err := gw.Logs(ctx, endpoint, 1, h.ns, "probe-log", msgwire.LogQuery{})
	g.Expect(err).NotTo(HaveOccurred())
	recs, raw := read(body)
	g.Expect(raw).NotTo(ContainSubstring(secret))
	g.Expect(recs).To(HaveLen(1), raw)
	g.Expect(recs[0].Message).To(Equal("the value is [redacted]"))
	g.Expect(recs[0].Level).To(Equal("info"))
	g.Expect(recs[0].ActorID).To(Equal(actorID))
	g.Expect(recs[0].Epoch).To(Equal(int64(1)))

	// Above the level: nothing.
	body, err = gw.Logs(ctx, endpoint, 1, h.ns, "probe-log", msgwire.LogQuery{Level: "warn"})
	g.Expect(err).NotTo(HaveOccurred())
	recs, _ = read(body)
	g.Expect(recs).To(BeEmpty())

	_, err = gw.Logs(ctx, endpoint, 2, h.ns, "probe-log", msgwire.LogQuery{})
	g.Expect(errors.Is(err, msgwire.ErrNotHere)).To(BeTrue(), "wrong epoch: %v", err)
	_, err = gw.Logs(ctx, endpoint, 1, h.ns, "nobody", msgwire.LogQuery{})
	g.Expect(errors.Is(err, msgwire.ErrNotHere)).To(BeTrue(), "no such run: %v", err)
	hostClient := msgwire.NewClient(mustFiles(t, peerIdentity(t, ca, msgwire.HostCN)).ClientTLSConfig(msgwire.HostCN), msgwire.ClientOptions{})
	t.Cleanup(hostClient.Close)
	_, err = hostClient.Logs(ctx, endpoint, 1, h.ns, "probe-log", msgwire.LogQuery{})
	g.Expect(errors.Is(err, msgwire.ErrUnauthenticated)).To(BeTrue(), "a host's identity: %v", err)

	// The gateway's way: its router finds the host, its handler checks
	// verb logs with a real SubjectAccessReview.
	c, err := msgroute.NewCache(s.env.Config, s.env.Scheme, nil, h.ns)
	g.Expect(err).NotTo(HaveOccurred())
	r, err := msgroute.New(ctx, c, msgroute.Options{Client: gw, LeaseNamespace: h.ns, Log: testr.New(t)})
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = c.Start(ctx) }()
	g.Expect(c.WaitForCacheSync(ctx)).To(BeTrue())
	body, err = gateway.Routed{Router: r}.Logs(ctx, h.ns, "probe-log", msgwire.LogQuery{Tail: 1, HasTail: true})
	g.Expect(err).NotTo(HaveOccurred())
	recs, raw = read(body)
	g.Expect(recs).To(HaveLen(1), raw)
	g.Expect(recs[0].Message).To(Equal("the value is [redacted]"))
	_, err = gateway.Routed{Router: r}.Logs(ctx, h.ns, "nobody", msgwire.LogQuery{})
	g.Expect(errors.Is(err, actorhost.ErrNoSuchActor)).To(BeTrue(), "no such actor: %v", err)

	// Followed, with no backlog: the stream stays open until the run
	// ends, then says so.
	body, err = gw.Logs(ctx, endpoint, 1, h.ns, "probe-log", msgwire.LogQuery{Follow: true, HasTail: true})
	g.Expect(err).NotTo(HaveOccurred())
	h.setSuspend("probe-log", true)
	recs, raw = read(body)
	g.Expect(recs).To(HaveLen(1), raw)
	g.Expect(recs[0].EndOfStream).NotTo(BeEmpty())
	g.Expect(recs[0].Seq).To(BeNumerically(">", 0))
}
