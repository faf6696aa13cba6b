package gateway

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actorhost"
)

// BenchmarkHandler measures the gateway's own cost per message: the
// baseline is a handler that reads the message and delivers it, as troupe
// run's socket does; the gateway adds requestheader authentication and
// the authorization (a cached decision, or a review per message against
// an in-process fake API, which shows the bookkeeping, not the API
// server's latency: TestThroughAggregator logs that).
func BenchmarkHandler(b *testing.B) {
	msg := bytes.Repeat([]byte("x"), 256)
	const path = pathPrefix + "/namespaces/team-a/actors/counter/request"
	run := func(b *testing.B, h http.Handler, g *testGateway) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, g.request(http.MethodPost, path, "alice", bytes.NewReader(msg), g.proxy))
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body.String())
			}
		}
	}
	b.Run("baseline=read+deliver", func(b *testing.B) {
		g := newTestGateway(b)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			resp, err := g.rec.Deliver(r.Context(), "team-a", "counter", "request", actorhost.Delivery{From: actorhost.Sender{External: "troupe-cli"}, Target: "team-a/counter", Msg: body})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = w.Write(resp)
		})
		run(b, h, g)
	})
	b.Run("gateway,decision cached", func(b *testing.B) {
		g := newTestGateway(b)
		run(b, g.srv.Handler(), g)
		if g.sar.calls.Load() != 1 {
			b.Fatalf("%d reviews, want 1", g.sar.calls.Load())
		}
	})
	b.Run("gateway,review per message", func(b *testing.B) {
		g := newTestGateway(b)
		g.srv.Authz.AllowTTL = 0
		run(b, g.srv.Handler(), g)
	})
}

// BenchmarkVerifyClientCert is what the cache of verified certificates
// saves on every message: an ECDSA chain verification.
func BenchmarkVerifyClientCert(b *testing.B) {
	g := newTestGateway(b)
	st := g.srv.Authn.cfg.Load()
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if err := st.verify([]*x509.Certificate{g.proxy}, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		for b.Loop() {
			clear(st.verified)
			if err := st.verify([]*x509.Certificate{g.proxy}, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
