package msgwire

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
)

// PeerAuth authenticates the peers of a server by their client
// certificate (CertFiles.ServerTLSConfig asks for one): verified once per
// connection, and again after the CA bundle was reloaded. Set
// http.Server.ConnContext to its ConnContext.
type PeerAuth struct {
	Files *CertFiles
	// CNs are the common names accepted; empty is HostCN and GatewayCN.
	CNs []string
}

type connAuthKey struct{}

// connAuth caches one connection's verdict.
type connAuth struct {
	mu  sync.Mutex
	gen uint64
	ok  bool
	cn  string
	err error
}

// ConnContext gives each connection its verdict cache.
func (a *PeerAuth) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connAuthKey{}, &connAuth{})
}

// Authenticate returns the peer's CN, or an *AuthError (errors.Is
// ErrUnauthenticated).
func (a *PeerAuth) Authenticate(r *http.Request) (string, error) {
	if r.TLS == nil {
		return "", &AuthError{Reason: AuthNoCertificate, Msg: "not over TLS"}
	}
	gen := a.Files.Generation()
	ca, _ := r.Context().Value(connAuthKey{}).(*connAuth)
	if ca == nil {
		return a.verify(r.TLS.PeerCertificates)
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if !ca.ok || ca.gen != gen {
		ca.cn, ca.err = a.verify(r.TLS.PeerCertificates)
		ca.ok, ca.gen = true, gen
	}
	return ca.cn, ca.err
}

func (a *PeerAuth) verify(chain []*x509.Certificate) (string, error) {
	cns := a.CNs
	if len(cns) == 0 {
		cns = []string{HostCN, GatewayCN}
	}
	return a.Files.Verify(chain, x509.ExtKeyUsageClientAuth, cns...)
}

// CheckSender applies the rule of peer identities: only the gateway
// (GatewayCN) delivers for an external caller; a host delivers only its
// actors' messages.
func CheckSender(cn string, p PeerRequest) error {
	if p.Delivery.From.External != "" && cn != GatewayCN {
		return &AuthError{Reason: AuthExternalSender, Msg: "peer " + cn + " may not deliver for an external caller"}
	}
	return nil
}
