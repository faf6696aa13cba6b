package msgwire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/peerca"
)

// writeIdentity writes a Secret-like directory: ca.crt, tls.crt, tls.key
// of a leaf with CN cn signed by ca.
func writeIdentity(t testing.TB, ca *peerca.KeyPair, cn string) string {
	t.Helper()
	leaf, err := peerca.IssueLeaf(ca, cn, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for f, b := range map[string][]byte{CAFile: ca.CertPEM, CertFile: leaf.CertPEM, KeyFile: leaf.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newCA(t testing.TB) *peerca.KeyPair {
	t.Helper()
	ca, err := peerca.NewCA("test-peer-ca", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func loadFiles(t testing.TB, dir string) *CertFiles {
	t.Helper()
	f, err := LoadCertFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// testServer serves PeerPattern over mTLS with answer deciding each
// delivery; it records what it read and refuses what fails Authenticate.
type testServer struct {
	url      string
	got      chan PeerRequest
	failures chan string
}

func startServer(t testing.TB, files *CertFiles, answer func(PeerRequest) ([]byte, error)) *testServer {
	t.Helper()
	ts := &testServer{got: make(chan PeerRequest, 1000), failures: make(chan string, 100)}
	auth := &PeerAuth{Files: files}
	mux := http.NewServeMux()
	mux.HandleFunc(PeerPattern, func(w http.ResponseWriter, r *http.Request) {
		cn, err := auth.Authenticate(r)
		if err != nil {
			var ae *AuthError
			errors.As(err, &ae)
			ts.failures <- ae.Reason
			WriteError(w, err)
			return
		}
		p, ok := ReadPeerRequest(w, r)
		if !ok {
			return
		}
		if err := CheckSender(cn, p); err != nil {
			ts.failures <- AuthExternalSender
			WriteError(w, err)
			return
		}
		ts.got <- p
		resp, err := answer(p)
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteResponse(w, p.Op, resp)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: files.ServerTLSConfig(), ConnContext: auth.ConnContext, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()
	t.Cleanup(func() { _ = srv.Close() })
	ts.url = "https://" + ln.Addr().String()
	return ts
}

func actorSender() actorhost.Sender {
	return actorhost.Sender{ActorID: "id-a", Namespace: "ns1", Name: "a"}
}

func TestDeliverRoundTrip(t *testing.T) {
	ca := newCA(t)
	server := startServer(t, loadFiles(t, writeIdentity(t, ca, HostCN)), func(p PeerRequest) ([]byte, error) {
		return append([]byte("echo:"), p.Delivery.Msg...), nil
	})
	c := NewClient(loadFiles(t, writeIdentity(t, ca, HostCN)).ClientTLSConfig(HostCN), ClientOptions{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := actorhost.Delivery{From: actorSender(), Target: "ns2/b", Msg: []byte("hi"), ID: "m-1",
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Path: []string{"id-x", "id-y"}}
	resp, err := c.Deliver(ctx, server.url, 7, OpRequest, d)
	if err != nil || string(resp) != "echo:hi" {
		t.Fatalf("Deliver = %q, %v", resp, err)
	}
	p := <-server.got
	want := PeerRequest{Namespace: "ns2", Name: "b", Op: OpRequest, Epoch: 7}
	if p.Namespace != want.Namespace || p.Name != want.Name || p.Op != want.Op || p.Epoch != want.Epoch {
		t.Errorf("read %+v, want %+v", p, want)
	}
	if p.Timeout <= 0 || p.Timeout > 10*time.Second {
		t.Errorf("Timeout = %v", p.Timeout)
	}
	g := p.Delivery
	if g.From != d.From || g.Target != d.Target || g.ID != d.ID || g.TraceParent != d.TraceParent || strings.Join(g.Path, ",") != "id-x,id-y" {
		t.Errorf("delivery %+v, want %+v", g, d)
	}
	if _, err := c.Deliver(ctx, server.url, 7, OpSend, d); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// TestErrorsRoundTrip: each error the server answers comes back as one
// that errors.Is the same kind, with the same message.
func TestErrorsRoundTrip(t *testing.T) {
	ca := newCA(t)
	kinds := map[string]error{
		"NoSuchActor":     actorhost.ErrNoSuchActor,
		"ActorNotRunning": actorhost.ErrActorNotRunning,
		"NoHandler":       actorhost.ErrNoHandler,
		"MailboxFull":     actorhost.ErrMailboxFull,
		"RateLimited":     actorhost.ErrRateLimited,
		"MessageTooLarge": actorhost.ErrMessageTooLarge,
		"NoResponse":      actorhost.ErrNoResponse,
		"RequestCycle":    actorhost.ErrRequestCycle,
		"NotHere":         ErrNotHere,
		"Moving":          ErrMoving,
		"NamespaceDenied": ErrNamespaceNotAllowed,
		"Forbidden":       ErrForbidden,
		"Timeout":         context.DeadlineExceeded,
	}
	server := startServer(t, loadFiles(t, writeIdentity(t, ca, HostCN)), func(p PeerRequest) ([]byte, error) {
		if p.Name == "handler" {
			return nil, &actorhost.HandlerError{Target: "id-b", Op: "handle-request", Reason: actorhost.ReasonTrap, Message: "boom"}
		}
		return nil, fmt.Errorf("wrapped: %w", kinds[string(p.Delivery.Msg)])
	})
	c := NewClient(loadFiles(t, writeIdentity(t, ca, HostCN)).ClientTLSConfig(HostCN), ClientOptions{})
	defer c.Close()
	ctx := context.Background()
	for name, kind := range kinds {
		t.Run(name, func(t *testing.T) {
			_, err := c.Deliver(ctx, server.url, 1, OpRequest, actorhost.Delivery{From: actorSender(), Target: "ns/b", Msg: []byte(name)})
			if !errors.Is(err, kind) {
				t.Fatalf("err = %v (%T), want errors.Is %v", err, err, kind)
			}
			if err.Error() != "wrapped: "+kind.Error() {
				t.Errorf("message %q", err.Error())
			}
			if Retriable(err) != (errors.Is(kind, ErrNotHere) || errors.Is(kind, ErrMoving)) {
				t.Errorf("Retriable = %v", Retriable(err))
			}
		})
	}
	_, err := c.Deliver(ctx, server.url, 1, OpRequest, actorhost.Delivery{From: actorSender(), Target: "ns/handler"})
	var he *actorhost.HandlerError
	if !errors.As(err, &he) || he.Reason != actorhost.ReasonTrap || he.Message != "boom" || he.Target != "id-b" {
		t.Fatalf("err = %#v", err)
	}
}

// TestAuth: a client of another CA, one without a certificate, one with a
// CN of no peer, and a host delivering for an external caller are refused
// with 401 and counted by reason; the gateway may deliver for one.
func TestAuth(t *testing.T) {
	ca := newCA(t)
	server := startServer(t, loadFiles(t, writeIdentity(t, ca, HostCN)), func(PeerRequest) ([]byte, error) { return []byte("ok"), nil })
	ext := actorhost.Delivery{From: actorhost.Sender{External: "user:alice"}, Target: "ns/b"}
	act := actorhost.Delivery{From: actorSender(), Target: "ns/b"}
	noCert := loadFiles(t, writeIdentity(t, ca, HostCN)).ClientTLSConfig(HostCN)
	noCert.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	tests := map[string]struct {
		tls    *tls.Config
		d      actorhost.Delivery
		reason string // "" accepted
	}{
		"host":             {tls: loadFiles(t, writeIdentity(t, ca, HostCN)).ClientTLSConfig(HostCN), d: act},
		"gateway external": {tls: loadFiles(t, writeIdentity(t, ca, GatewayCN)).ClientTLSConfig(HostCN), d: ext},
		"host external":    {tls: loadFiles(t, writeIdentity(t, ca, HostCN)).ClientTLSConfig(HostCN), d: ext, reason: AuthExternalSender},
		"other CA":         {tls: otherCA(t), d: act, reason: AuthUntrusted},
		"wrong CN":         {tls: loadFiles(t, writeIdentity(t, ca, "someone")).ClientTLSConfig(HostCN), d: act, reason: AuthWrongCN},
		"no certificate":   {tls: noCert, d: act, reason: AuthNoCertificate},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := NewClient(tc.tls, ClientOptions{})
			defer c.Close()
			_, err := c.Deliver(context.Background(), server.url, 1, OpRequest, tc.d)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				<-server.got
				return
			}
			var re *RemoteError
			if !errors.As(err, &re) || re.Status != http.StatusUnauthorized || !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v, want 401 Unauthenticated", err)
			}
			if got := <-server.failures; got != tc.reason {
				t.Errorf("counted %q, want %q", got, tc.reason)
			}
			select {
			case p := <-server.got:
				t.Errorf("delivered %+v", p)
			default:
			}
		})
	}
}

// otherCA is a client identity of another CA that trusts the server's
// (it would be accepted, but for its own certificate).
func otherCA(t *testing.T) *tls.Config {
	cfg := loadFiles(t, writeIdentity(t, newCA(t), HostCN)).ClientTLSConfig(HostCN)
	cfg.VerifyConnection = nil
	return cfg
}

// TestServerOfAnotherCA: the client refuses a server whose certificate
// does not chain to its CA, before writing anything (ErrNotSent).
func TestServerOfAnotherCA(t *testing.T) {
	server := startServer(t, loadFiles(t, writeIdentity(t, newCA(t), HostCN)), func(PeerRequest) ([]byte, error) { return nil, nil })
	c := NewClient(loadFiles(t, writeIdentity(t, newCA(t), HostCN)).ClientTLSConfig(HostCN), ClientOptions{})
	defer c.Close()
	_, err := c.Deliver(context.Background(), server.url, 1, OpSend, actorhost.Delivery{From: actorSender(), Target: "ns/b"})
	if !errors.Is(err, ErrNotSent) || !strings.Contains(err.Error(), "does not chain") {
		t.Fatalf("err = %v", err)
	}
}

// TestNotSent: a peer nobody listens on fails with ErrNotSent.
func TestNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := NewClient(loadFiles(t, writeIdentity(t, newCA(t), HostCN)).ClientTLSConfig(HostCN), ClientOptions{DialTimeout: time.Second})
	defer c.Close()
	_, err = c.Deliver(context.Background(), "https://"+addr, 1, OpRequest, actorhost.Delivery{From: actorSender(), Target: "ns/b"})
	if !errors.Is(err, ErrNotSent) {
		t.Fatalf("err = %v", err)
	}
}

// TestReload: a rotated identity in the directory is used without a
// restart: the server trusts the new CA once its bundle holds it.
func TestReload(t *testing.T) {
	ca1, ca2 := newCA(t), newCA(t)
	dir := writeIdentity(t, ca1, HostCN)
	files := loadFiles(t, dir)
	files.CheckInterval = time.Millisecond
	server := startServer(t, files, func(PeerRequest) ([]byte, error) { return []byte("ok"), nil })
	c2 := NewClient(loadFiles(t, writeIdentity(t, ca2, HostCN)).ClientTLSConfig(HostCN), ClientOptions{})
	defer c2.Close()
	d := actorhost.Delivery{From: actorSender(), Target: "ns/b"}
	if _, err := c2.Deliver(context.Background(), server.url, 1, OpRequest, d); err == nil {
		t.Fatal("a client of another CA was accepted")
	}
	// The rotation: the bundle holds both CAs, the leaf is the new CA's.
	newDir := writeIdentity(t, ca2, HostCN)
	bundle := append(append([]byte{}, ca1.CertPEM...), ca2.CertPEM...)
	for f, b := range map[string][]byte{CAFile: bundle} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{CertFile, KeyFile} {
		b, _ := os.ReadFile(filepath.Join(newDir, f))
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := NewClient(loadFiles(t, writeIdentity(t, ca2, HostCN)).ClientTLSConfig(HostCN), ClientOptions{})
		_, err := c.Deliver(context.Background(), server.url, 1, OpRequest, d)
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the rotation: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProtocolIsHTTP2(t *testing.T) {
	ca := newCA(t)
	files := loadFiles(t, writeIdentity(t, ca, HostCN))
	mux := http.NewServeMux()
	protos := make(chan string, 1)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { protos <- r.Proto })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: files.ServerTLSConfig(), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()
	defer srv.Close()
	c := NewClient(loadFiles(t, writeIdentity(t, ca, HostCN)).ClientTLSConfig(HostCN), ClientOptions{})
	defer c.Close()
	_, _ = c.Deliver(context.Background(), "https://"+ln.Addr().String(), 1, OpSend, actorhost.Delivery{From: actorSender(), Target: "ns/b"})
	if p := <-protos; p != "HTTP/2.0" {
		t.Fatalf("protocol %s", p)
	}
}
