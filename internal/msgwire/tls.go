package msgwire

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File names of a peer TLS Secret mounted as a directory (PROTOCOL.md,
// contract of issue 14): the CA bundle (old and new CA during a rotation),
// the leaf and its key.
const (
	CAFile   = "ca.crt"
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// Common names of the peers' certificates.
const (
	// HostCN is the CN of the hosts' certificate: a host peer delivers
	// actors' messages only.
	HostCN = "troupe-host"
	// GatewayCN is the CN of the gateway's: it alone may deliver with
	// From.External set.
	GatewayCN = "troupe-gateway"
)

// Auth failure reasons, the label of the hosts' auth failure counter.
const (
	AuthNoCertificate  = "no_certificate"
	AuthUntrusted      = "untrusted"
	AuthWrongCN        = "wrong_cn"
	AuthExternalSender = "external_sender"
)

// AuthError is a peer refused at authentication; Reason is one of the
// Auth constants.
type AuthError struct {
	Reason string
	Msg    string
}

func (e *AuthError) Error() string { return e.Msg }

// Unwrap makes an AuthError errors.Is ErrUnauthenticated.
func (e *AuthError) Unwrap() error { return ErrUnauthenticated }

// CertFiles is a TLS identity kept in a directory (CAFile, CertFile,
// KeyFile, as a Secret is mounted) and reloaded when the files change: a
// rotation by the manager reaches running hosts without a restart. The
// files are looked at again at most every CheckInterval.
type CertFiles struct {
	dir string
	// CheckInterval bounds how often the files are stat'ed; 0 is 5 s.
	CheckInterval time.Duration

	mu      sync.Mutex
	cur     *identity
	stamp   string
	checked time.Time
}

// identity is one loaded version of the files.
type identity struct {
	cert *tls.Certificate
	pool *x509.CertPool
	// gen counts the loads, so a connection verified under an older CA
	// bundle is verified again.
	gen uint64
}

// LoadCertFiles loads the identity in dir; it fails when the files are
// missing or do not parse.
func LoadCertFiles(dir string) (*CertFiles, error) {
	c := &CertFiles{dir: dir}
	if _, err := c.current(); err != nil {
		return nil, err
	}
	return c, nil
}

// stampOf is the files' modification times and sizes: a Secret volume
// swaps its ..data symlink, which changes them all.
func (c *CertFiles) stampOf() (string, error) {
	s := ""
	for _, f := range []string{CAFile, CertFile, KeyFile} {
		fi, err := os.Stat(filepath.Join(c.dir, f))
		if err != nil {
			return "", fmt.Errorf("peer TLS: %w", err)
		}
		s += fmt.Sprintf("%d.%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

// current is the identity, reloaded when the files changed. A reload
// that fails keeps the previous identity (a rotation half written is
// retried at the next check).
func (c *CertFiles) current() (*identity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	every := c.CheckInterval
	if every == 0 {
		every = 5 * time.Second
	}
	if c.cur != nil && time.Since(c.checked) < every {
		return c.cur, nil
	}
	c.checked = time.Now()
	stamp, err := c.stampOf()
	if err == nil && stamp == c.stamp && c.cur != nil {
		return c.cur, nil
	}
	var id *identity
	if err == nil {
		id, err = c.load()
	}
	if err != nil {
		if c.cur != nil {
			return c.cur, nil
		}
		return nil, err
	}
	if c.cur != nil {
		id.gen = c.cur.gen + 1
	}
	c.cur, c.stamp = id, stamp
	return id, nil
}

func (c *CertFiles) load() (*identity, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.dir, CertFile), filepath.Join(c.dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("peer TLS: loading the certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(c.dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("peer TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("peer TLS: %s holds no certificate", filepath.Join(c.dir, CAFile))
	}
	return &identity{cert: &cert, pool: pool}, nil
}

// Generation counts the reloads of the files.
func (c *CertFiles) Generation() uint64 {
	id, err := c.current()
	if err != nil {
		return 0
	}
	return id.gen
}

// Verify checks a peer's certificate chain against the current CA bundle
// for usage, and that its CN is one of cns; it returns the CN. Its errors
// are *AuthError.
func (c *CertFiles) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, cns ...string) (string, error) {
	if len(chain) == 0 {
		return "", &AuthError{Reason: AuthNoCertificate, Msg: "no client certificate"}
	}
	id, err := c.current()
	if err != nil {
		return "", &AuthError{Reason: AuthUntrusted, Msg: "no CA to verify with: " + err.Error()}
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: id.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", &AuthError{Reason: AuthUntrusted, Msg: "the certificate does not chain to the peer CA: " + err.Error()}
	}
	for _, cn := range cns {
		if leaf.Subject.CommonName == cn {
			return cn, nil
		}
	}
	return "", &AuthError{Reason: AuthWrongCN, Msg: fmt.Sprintf("certificate CN %q may not deliver here", truncate(leaf.Subject.CommonName))}
}

// ServerTLSConfig serves the current certificate and asks for a client
// certificate without verifying it in the handshake: the handler verifies
// it (VerifyRequest), so that a refused peer gets a 401 with a body and is
// counted, not a bare handshake failure.
func (c *CertFiles) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			id, err := c.current()
			if err != nil {
				return nil, err
			}
			return id.cert, nil
		},
		NextProtos: []string{"h2"},
	}
}

// ClientTLSConfig presents the current certificate and accepts a server
// whose certificate chains to the current CA bundle with CN serverCN. The
// host name is not checked: hosts are reached by pod IP, which no
// certificate of the manager's can name; the CA and the CN stand for it.
func (c *CertFiles) ClientTLSConfig(serverCN string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			id, err := c.current()
			if err != nil {
				return nil, err
			}
			return id.cert, nil
		},
		// Verified by VerifyConnection below, against the CA bundle of
		// the moment rather than one fixed at start.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := c.Verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, serverCN)
			if err != nil {
				return fmt.Errorf("peer TLS: the server: %w", err)
			}
			return nil
		},
		NextProtos: []string{"h2"},
	}
}
