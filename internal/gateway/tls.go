package gateway

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// ServingTLS is the gateway's TLS configuration: its serving certificate
// from certFile and keyFile, re-read when the files change (a mounted
// Secret that was renewed), and the client's certificate asked for but
// checked per request by Authenticator, so that a caller without one
// still reaches /healthz and gets a JSON 401 elsewhere rather than a
// failed handshake.
func ServingTLS(certFile, keyFile string) (*tls.Config, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(nil); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.RequestClientCert,
		GetCertificate: r.get,
		NextProtos:     []string{"h2", "http/1.1"},
	}, nil
}

// certReloader re-reads the key pair at most every reloadEvery, when a
// file's modification time moved.
type certReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	mod               time.Time
	checked           time.Time
}

const reloadEvery = 10 * time.Second

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.cert != nil && now.Sub(r.checked) < reloadEvery {
		return r.cert, nil
	}
	r.checked = now
	mod := latestMod(r.certFile, r.keyFile)
	if r.cert != nil && !mod.After(r.mod) {
		return r.cert, nil
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // keep serving the old pair while a write is half done
		}
		return nil, fmt.Errorf("loading the serving certificate %s: %w", r.certFile, err)
	}
	r.cert, r.mod = &c, mod
	return r.cert, nil
}

func latestMod(files ...string) time.Time {
	var t time.Time
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}
