package host

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/msgwire"
	"github.com/troupe-dev/troupe/internal/peerca"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// peerIdentity writes a peer TLS directory (as the manager's Secret is
// mounted) of a leaf with CN cn signed by ca.
func peerIdentity(t testing.TB, ca *peerca.KeyPair, cn string) string {
	t.Helper()
	leaf, err := peerca.IssueLeaf(ca, cn, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for f, b := range map[string][]byte{msgwire.CAFile: ca.CertPEM, msgwire.CertFile: leaf.CertPEM, msgwire.KeyFile: leaf.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newPeerCA(t testing.TB) *peerca.KeyPair {
	t.Helper()
	ca, err := peerca.NewCA("troupe-peer-ca-test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// withPeer gives a host the peer transport with a host identity of ca,
// its Lease in leaseNS (shared by the hosts that reach one another).
func withPeer(t testing.TB, ca *peerca.KeyPair, leaseNS string) hostOption {
	dir := peerIdentity(t, ca, msgwire.HostCN)
	return func(c *Config) {
		c.Peer = &PeerConfig{Address: "127.0.0.1:0", TLSDir: dir, MovingWait: 3 * time.Second}
		if leaseNS != "" {
			c.PodNamespace = leaseNS
		}
	}
}

// apiCounter counts the API requests of the hosts given countingAPI, by
// "METHOD path".
type apiCounter struct {
	mu   sync.Mutex
	reqs map[string]int
	on   atomic.Bool
}

func (c *apiCounter) RoundTrip(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if c.on.Load() {
			c.mu.Lock()
			c.reqs[r.Method+" "+r.URL.Path]++
			c.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

func (c *apiCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.reqs {
		out[k] = v
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func countingAPI(c *apiCounter) hostOption {
	return func(cfg *Config) {
		rc := rest.CopyConfig(cfg.RestConfig)
		rc.Wrap(c.RoundTrip)
		cfg.RestConfig = rc
	}
}

// ask is the messenger's request to ask target with rest.
func ask(target, rest string) []byte {
	return append([]byte{'a', byte(len(target))}, target+rest...)
}

// sendTo is the messenger's message that makes it send rest to target
// and answer "ok".
func sendTo(target, rest string) []byte {
	return append([]byte{'s', byte(len(target))}, target+rest...)
}

// yCount asks, through x on host a, for y's counter (messenger's "g").
func yCount(t *testing.T, a *harness) (uint32, error) {
	resp, err := a.host.engine.Request(t.Context(), actorhost.Delivery{From: actorhost.Sender{External: "test"}, Target: a.ns + "/x", Msg: ask("y", "g")})
	if err != nil {
		return 0, err
	}
	if len(resp) != 4 {
		return 0, fmt.Errorf("y's count: %q, want 4 bytes", resp)
	}
	return binary.LittleEndian.Uint32(resp), nil
}

// TestPeer runs two hosts in-process that deliver to each other's actors
// over mutual TLS on loopback.
func TestPeer(t *testing.T) {
	s := newSuite(t)
	ca := newPeerCA(t)
	g := NewWithT(t)
	api := &apiCounter{reqs: map[string]int{}}
	a := s.startHost(t, withPeer(t, ca, ""), countingAPI(api))
	b := s.besides(t, a, withPeer(t, ca, a.ns), countingAPI(api))
	wasm, err := os.ReadFile(filepath.Join("..", "actorhost", "testdata", "messenger.wasm"))
	g.Expect(err).NotTo(HaveOccurred())
	src := s.urlSource(wasm)
	a.run("x", v1alpha1.ActorSpec{Component: *src}, time.Minute)
	b.create("y", v1alpha1.ActorSpec{Component: *src})
	b.assign("y", b.pod, 1)
	waitRunning(t, b, "y", 1)
	external := actorhost.Sender{External: "test"}
	request := func(h *harness, target string, msg []byte) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return h.host.engine.Request(ctx, actorhost.Delivery{From: external, Target: h.ns + "/" + target, Msg: msg})
	}
	// The Leases publish where the hosts take messages.
	for _, h := range []*harness{a, b} {
		var l coordinationv1.Lease
		g.Expect(a.c.Get(a.ctx(), types.NamespacedName{Namespace: a.ns, Name: h.pod}, &l)).To(Succeed())
		g.Expect(l.Annotations).To(HaveKeyWithValue(v1alpha1.PeerEndpointAnnotation, "https://"+h.host.Addresses()["peer"]))
		g.Expect(l.Annotations).To(HaveKeyWithValue(v1alpha1.PeerProtocolAnnotation, "1"))
	}

	t.Run("RequestAcrossHosts", func(t *testing.T) {
		g := NewWithT(t)
		resp, err := request(a, "x", ask("y", "ehello"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(resp)).To(Equal("ehello"))
		// And back: y on b asks x on a.
		resp, err = request(b, "y", ask("x", "eback"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(resp)).To(Equal("eback"))
		g.Eventually(b.metrics).Should(ContainSubstring(`troupe_host_peer_deliveries_total{op="request",result="ok"}`))
	})

	t.Run("CycleAcrossHostsRefusedAtOnce", func(t *testing.T) {
		g := NewWithT(t)
		// x asks y, whose handler asks x: x's request is in progress, so
		// y's would wait for itself.
		begin := time.Now()
		resp, err := request(a, "x", ask("y", string(ask("x", "e"))))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(resp)).To(ContainSubstring("request cycle"))
		g.Expect(time.Since(begin)).To(BeNumerically("<", 2*time.Second), "refused at once, not at a timeout")
	})

	client := msgwire.NewClient(mustFiles(t, peerIdentity(t, ca, msgwire.HostCN)).ClientTLSConfig(msgwire.HostCN), msgwire.ClientOptions{})
	t.Cleanup(client.Close)
	bEndpoint := "https://" + b.host.Addresses()["peer"]
	yFrom := actorhost.Sender{ActorID: "some-actor", Namespace: a.ns, Name: "someone"}
	counter := func() []byte {
		resp, err := client.Deliver(context.Background(), bEndpoint, 1, msgwire.OpRequest, actorhost.Delivery{From: yFrom, Target: a.ns + "/y", Msg: []byte("g")})
		if err != nil {
			return []byte(err.Error())
		}
		return resp
	}

	t.Run("StaleEpochRefused", func(t *testing.T) {
		g := NewWithT(t)
		before := counter()
		for _, op := range []string{msgwire.OpSend, msgwire.OpRequest} {
			_, err := client.Deliver(context.Background(), bEndpoint, 7, op, actorhost.Delivery{From: yFrom, Target: a.ns + "/y", Msg: []byte("i")})
			g.Expect(errors.Is(err, msgwire.ErrNotHere)).To(BeTrue(), "%s: %v", op, err)
			g.Expect(err.Error()).To(ContainSubstring("at epoch 1, not 7"))
		}
		// Nothing was enqueued: the counter did not move.
		_, err := client.Deliver(context.Background(), bEndpoint, 1, msgwire.OpSend, actorhost.Delivery{From: yFrom, Target: a.ns + "/y", Msg: []byte("n")})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(counter()).To(Equal(before))
		g.Expect(b.metrics()).To(ContainSubstring(`troupe_host_peer_deliveries_total{op="send",result="NotHere"} 1`))
	})

	t.Run("PeerOfAnotherCARefusedAndCounted", func(t *testing.T) {
		g := NewWithT(t)
		other := mustFiles(t, peerIdentity(t, newPeerCA(t), msgwire.HostCN)).ClientTLSConfig(msgwire.HostCN)
		other.VerifyConnection = nil // it would trust b; b must not trust it
		c := msgwire.NewClient(other, msgwire.ClientOptions{})
		defer c.Close()
		before := counter()
		_, err := c.Deliver(context.Background(), bEndpoint, 1, msgwire.OpSend, actorhost.Delivery{From: yFrom, Target: a.ns + "/y", Msg: []byte("i")})
		g.Expect(errors.Is(err, msgwire.ErrUnauthenticated)).To(BeTrue(), "%v", err)
		// A host may not speak for an external caller.
		_, err = client.Deliver(context.Background(), bEndpoint, 1, msgwire.OpSend, actorhost.Delivery{From: actorhost.Sender{External: "user:mallory"}, Target: a.ns + "/y", Msg: []byte("i")})
		g.Expect(errors.Is(err, msgwire.ErrUnauthenticated)).To(BeTrue(), "%v", err)
		m := b.metrics()
		g.Expect(m).To(ContainSubstring(`troupe_host_peer_auth_failures_total{reason="untrusted"} 1`))
		g.Expect(m).To(ContainSubstring(`troupe_host_peer_auth_failures_total{reason="external_sender"} 1`))
		g.Expect(counter()).To(Equal(before), "nothing delivered")
	})

	t.Run("NoAPIRequestPerMessage", func(t *testing.T) {
		g := NewWithT(t)
		const messages, workers = 500, 8
		api.on.Store(true)
		begin := time.Now()
		var wg sync.WaitGroup
		var failed atomic.Int64
		var next atomic.Int64
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= messages {
					if resp, err := request(a, "x", ask("y", "eping")); err != nil || string(resp) != "eping" {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		took := time.Since(begin)
		api.on.Store(false)
		g.Expect(failed.Load()).To(BeZero())
		reqs := api.snapshot()
		total := 0
		for k, n := range reqs {
			total += n
			// Routing reads informers: no LIST of Actors or Leases, and no
			// GET of an Actor per message. A status write that conflicts
			// (the move of the subtest before still settling) reads its
			// Actor once, which a GET or two allows.
			get := strings.HasPrefix(k, "GET ")
			switch {
			case get && (strings.HasSuffix(k, "/actors") || strings.HasSuffix(k, "/leases")):
				t.Errorf("%d× %s (a LIST) during the burst", n, k)
			case get && strings.Contains(k, "/actors/") && n > 2:
				t.Errorf("%d× %s during the burst: routing reads the API server per message", n, k)
			}
		}
		t.Logf("%d cross-host requests in %s (%.0f/s, 8 at once): %d API requests: %v", messages, took.Round(time.Millisecond), messages/took.Seconds(), total, reqs)
		// Lease renewals and bounded status writes only.
		g.Expect(total).To(BeNumerically("<", 10+int(took/(100*time.Millisecond))), fmt.Sprint(reqs))
	})
}

func mustFiles(t testing.TB, dir string) *msgwire.CertFiles {
	t.Helper()
	f, err := msgwire.LoadCertFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPeerMove: the target's host goes away mid-conversation and the
// actor moves to a third host. Requests meanwhile fail retriably (Moving)
// and then succeed, and no request is handled twice: each one answered is
// in the target's chains (old host's and new host's) exactly once, each
// one refused in none. The hosts share an archive, so the target's state
// (a counter its sends raised before the move) continues on the new host.
func TestPeerMove(t *testing.T) {
	s := newSuite(t)
	ca := newPeerCA(t)
	g := NewWithT(t)
	st := s3test.Start(t).Bucket(t, "troupe")
	a := s.startHost(t, withPeer(t, ca, ""))
	b := s.besides(t, a, withPeer(t, ca, a.ns), restoringFrom(st))
	c := s.besides(t, a, withPeer(t, ca, a.ns), restoringFrom(st))
	wasm, err := os.ReadFile(filepath.Join("..", "actorhost", "testdata", "messenger.wasm"))
	g.Expect(err).NotTo(HaveOccurred())
	src := s.urlSource(wasm)
	// x waits for y longer than a move's bounded wait (3 s here), so
	// that it sees Moving rather than its own timeout.
	a.run("x", v1alpha1.ActorSpec{Component: *src, Limits: v1alpha1.Limits{RequestTimeout: &metav1.Duration{Duration: 10 * time.Second}}}, time.Minute)
	b.create("y", v1alpha1.ActorSpec{Component: *src})
	b.assign("y", b.pod, 1)
	waitRunning(t, b, "y", 1)
	oldChain := b.chainFile("y")

	var seq atomic.Int64
	answered, moving := map[string]bool{}, map[string]bool{}
	var mu sync.Mutex
	// one asks x to ask y with a message of its own, and files it by the
	// outcome; anything but an answer or Moving fails the test.
	one := func() {
		msg := fmt.Sprintf("e%d", seq.Add(1))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := a.host.engine.Request(ctx, actorhost.Delivery{From: actorhost.Sender{External: "test"}, Target: a.ns + "/x", Msg: ask("y", msg)})
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && string(resp) == msg:
			answered[msg] = true
		case err == nil && strings.Contains(string(resp), msgwire.ErrMoving.Error()):
			moving[msg] = true
		default:
			t.Errorf("%s: %q, %v", msg, resp, err)
		}
	}
	for range 20 {
		one()
	}
	g.Expect(answered).To(HaveLen(20))
	// x sends y five increments across the hosts; y's count is its state.
	const increments = 5
	for range increments {
		resp, err := a.host.engine.Request(t.Context(), actorhost.Delivery{From: actorhost.Sender{External: "test"}, Target: a.ns + "/x", Msg: sendTo("y", "i")})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(resp)).To(Equal("ok"))
	}
	g.Eventually(yCount).WithArguments(t, a).Should(Equal(uint32(increments)))

	// b goes away: its Lease with it. Requests keep coming.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					one()
				}
			}
		})
	}
	b.stop()
	g.Eventually(func() int { mu.Lock(); defer mu.Unlock(); return len(moving) }).WithTimeout(30 * time.Second).Should(BeNumerically(">", 0))
	// The controller's part: y moves to c.
	c.assign("y", c.pod, 2)
	waitRunning(t, c, "y", 2)
	mu.Lock()
	before := len(answered)
	mu.Unlock()
	g.Eventually(func() int { mu.Lock(); defer mu.Unlock(); return len(answered) }).WithTimeout(30 * time.Second).Should(BeNumerically(">", before+20))
	close(stop)
	wg.Wait()
	// y's state came from the archive: the count its sends raised on b.
	g.Expect(yCount(t, a)).To(Equal(uint32(increments)), "y's count after the move")
	c.stop() // its chain flushed and closed

	// Each answered request was handled once, by b or c; no refused one
	// was handled at all.
	handled := map[string]int{}
	for _, path := range []string{oldChain, c.chainFile("y")} {
		for _, e := range readEvents(t, path) {
			if e.Kind != chain.KindRequestReceived {
				continue
			}
			var d struct {
				Sha256 string `json:"sha256"`
			}
			g.Expect(json.Unmarshal(e.Data, &d)).To(Succeed())
			handled[d.Sha256]++
		}
	}
	digest := func(m string) string { s := sha256.Sum256([]byte(m)); return hex.EncodeToString(s[:]) }
	for m := range answered {
		g.Expect(handled[digest(m)]).To(Equal(1), "answered %s: handled %d times", m, handled[digest(m)])
	}
	for m := range moving {
		g.Expect(handled[digest(m)]).To(BeZero(), "refused %s", m)
	}
	t.Logf("%d requests answered, %d refused as Moving while y moved", len(answered), len(moving))
}
