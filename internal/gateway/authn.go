package gateway

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The configmap the API server publishes its front-proxy settings in, and
// its keys (k8s.io/apiserver's ClientCARegistrationHook writes them).
const (
	AuthConfigMapNamespace = "kube-system"
	AuthConfigMapName      = "extension-apiserver-authentication"

	keyClientCA       = "requestheader-client-ca-file"
	keyAllowedNames   = "requestheader-allowed-names"
	keyUsernameHeader = "requestheader-username-headers"
	keyUIDHeaders     = "requestheader-uid-headers"
	keyGroupHeaders   = "requestheader-group-headers"
	keyExtraPrefixes  = "requestheader-extra-headers-prefix"
)

// User is an authenticated caller, as the API server authenticated it.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// serviceAccountPrefix starts the user name of a ServiceAccount's token.
const serviceAccountPrefix = "system:serviceaccount:"

// Sender is how the receiver's chain records the caller:
// "serviceaccount:<ns>:<name>" for a ServiceAccount, else "user:<name>".
// Never a credential: the gateway never sees the caller's token.
func (u User) Sender() string {
	if rest, ok := strings.CutPrefix(u.Name, serviceAccountPrefix); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok && ns != "" && name != "" {
			return "serviceaccount:" + ns + ":" + name
		}
	}
	return "user:" + u.Name
}

// RequestHeaderConfig is what the front proxy's requests are checked
// against: the CA its client certificate must chain to, the names that
// certificate may carry (empty: any), and the headers it sets.
type RequestHeaderConfig struct {
	CAs             *x509.CertPool
	AllowedNames    []string
	UsernameHeaders []string
	UIDHeaders      []string
	GroupHeaders    []string
	ExtraPrefixes   []string
}

// ConfigFromConfigMap reads the front-proxy settings of the API server's
// extension-apiserver-authentication configmap. It fails when the API
// server has no front proxy configured (no requestheader client CA): then
// nobody can reach the gateway with an identity.
func ConfigFromConfigMap(cm *corev1.ConfigMap) (*RequestHeaderConfig, error) {
	ca := cm.Data[keyClientCA]
	if strings.TrimSpace(ca) == "" {
		return nil, fmt.Errorf("%s/%s has no %s: start the API server with --requestheader-client-ca-file (docs/install.md#calling-an-actor)", cm.Namespace, cm.Name, keyClientCA)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		return nil, fmt.Errorf("%s/%s: %s holds no PEM certificate", cm.Namespace, cm.Name, keyClientCA)
	}
	c := &RequestHeaderConfig{CAs: pool}
	for _, f := range []struct {
		key string
		dst *[]string
	}{
		{keyAllowedNames, &c.AllowedNames},
		{keyUsernameHeader, &c.UsernameHeaders},
		{keyUIDHeaders, &c.UIDHeaders},
		{keyGroupHeaders, &c.GroupHeaders},
		{keyExtraPrefixes, &c.ExtraPrefixes},
	} {
		v := strings.TrimSpace(cm.Data[f.key])
		if v == "" {
			continue
		}
		if err := json.Unmarshal([]byte(v), f.dst); err != nil {
			return nil, fmt.Errorf("%s/%s: %s is not a JSON list of strings: %w", cm.Namespace, cm.Name, f.key, err)
		}
	}
	if len(c.UsernameHeaders) == 0 {
		return nil, fmt.Errorf("%s/%s has no %s: start the API server with --requestheader-username-headers", cm.Namespace, cm.Name, keyUsernameHeader)
	}
	return c, nil
}

// AuthError is a request the gateway refuses to trust (401). Reason is a
// short label for the failures metric; the message says why.
type AuthError struct {
	Reason string
	msg    string
}

func (e *AuthError) Error() string { return e.msg }

func authErr(reason, format string, args ...any) error {
	return &AuthError{Reason: reason, msg: fmt.Sprintf(format, args...)}
}

// Authenticator authenticates the front proxy's requests. Its
// configuration is swapped whole when the configmap changes (a CA
// rotation), so a request sees one consistent configuration.
type Authenticator struct {
	cfg atomic.Pointer[authState]
	now func() time.Time
}

// authState is one configuration with the certificates it verified: a
// front proxy reuses its connections and its one certificate, and an
// ECDSA chain verification costs more than the rest of a request.
type authState struct {
	RequestHeaderConfig
	mu       sync.Mutex
	verified map[[32]byte]time.Time // leaf fingerprint -> its NotAfter
}

// maxVerifiedCerts bounds the cache of verified certificates: a front
// proxy has one, a few during a rotation.
const maxVerifiedCerts = 64

// NewAuthenticator returns an Authenticator with no configuration: it
// refuses every request until Set gives it one.
func NewAuthenticator() *Authenticator { return &Authenticator{now: time.Now} }

// Set replaces the configuration (nil: refuse everything).
func (a *Authenticator) Set(c *RequestHeaderConfig) {
	if c == nil {
		a.cfg.Store(nil)
		return
	}
	a.cfg.Store(&authState{RequestHeaderConfig: *c, verified: map[[32]byte]time.Time{}})
}

// Ready reports whether a configuration is set.
func (a *Authenticator) Ready() bool { return a.cfg.Load() != nil }

// Authenticate returns the caller of r: the front proxy's headers, trusted
// only when r's TLS client certificate chains to the requestheader CA and
// has an allowed common name. Any failure is an *AuthError.
func (a *Authenticator) Authenticate(r *http.Request) (User, error) {
	st := a.cfg.Load()
	if st == nil {
		return User{}, authErr("NotConfigured", "the gateway has not read the API server's front-proxy configuration (%s/%s) yet", AuthConfigMapNamespace, AuthConfigMapName)
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return User{}, authErr("NoClientCert", "no client certificate: call the gateway through the Kubernetes API server (/apis/gateway.troupe.dev/v1alpha1/...)")
	}
	if err := st.verify(r.TLS.PeerCertificates, a.now()); err != nil {
		return User{}, err
	}
	u := User{Name: firstHeader(r.Header, st.UsernameHeaders), UID: firstHeader(r.Header, st.UIDHeaders)}
	if u.Name == "" {
		return User{}, authErr("NoUser", "the front proxy's request names no user (headers %s)", strings.Join(st.UsernameHeaders, ", "))
	}
	for _, h := range st.GroupHeaders {
		u.Groups = append(u.Groups, r.Header.Values(h)...)
	}
	u.Extra = extras(r.Header, st.ExtraPrefixes)
	return u, nil
}

// verify checks the client's chain and name, remembering a verified leaf
// until it expires.
func (st *authState) verify(chain []*x509.Certificate, now time.Time) error {
	leaf := chain[0]
	fp := sha256.Sum256(leaf.Raw)
	st.mu.Lock()
	notAfter, ok := st.verified[fp]
	st.mu.Unlock()
	if ok && now.Before(notAfter) {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: st.CAs, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return authErr("UntrustedClientCert", "the client certificate (CN %q) is not signed by the API server's requestheader client CA: %v", leaf.Subject.CommonName, err)
	}
	if len(st.AllowedNames) > 0 && !slices.Contains(st.AllowedNames, leaf.Subject.CommonName) {
		return authErr("NameNotAllowed", "the client certificate's CN %q is not one of the API server's requestheader-allowed-names", leaf.Subject.CommonName)
	}
	st.mu.Lock()
	if len(st.verified) >= maxVerifiedCerts {
		clear(st.verified)
	}
	st.verified[fp] = leaf.NotAfter
	st.mu.Unlock()
	return nil
}

func firstHeader(h http.Header, names []string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// extras reads the extra attributes as k8s.io/apiserver's requestheader
// authenticator does: the key after the prefix, lower-cased and
// unescaped.
func extras(h http.Header, prefixes []string) map[string][]string {
	var out map[string][]string
	for name, vals := range h {
		lower := strings.ToLower(name)
		for _, p := range prefixes {
			p = strings.ToLower(p)
			if !strings.HasPrefix(lower, p) || len(lower) == len(p) {
				continue
			}
			key, err := url.PathUnescape(lower[len(p):])
			if err != nil {
				key = lower[len(p):]
			}
			if out == nil {
				out = map[string][]string{}
			}
			out[key] = append(out[key], vals...)
		}
	}
	return out
}

// isAuthError reports whether err is an *AuthError.
func isAuthError(err error) (*AuthError, bool) {
	var ae *AuthError
	ok := errors.As(err, &ae)
	return ae, ok
}
