package peerca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the Secrets (the peers mount theirs as a directory:
// msgwire.CAFile, CertFile, KeyFile).
const (
	KeyCACert = "ca.crt"
	KeyCAKey  = "ca.key"
	// KeyNextCert and KeyNextKey hold the CA that is to take over: it
	// is in every bundle first, and signs only once the peers have had
	// time to trust it (PropagationDelay).
	KeyNextCert = "next.crt"
	KeyNextKey  = "next.key"
	// KeyPrevCert is the CA that signed before the last rotation: still
	// in the bundles until it expires, so leaves it signed stay good.
	KeyPrevCert = "prev.crt"
	KeyTLSCert  = "tls.crt"
	KeyTLSKey   = "tls.key"
)

// nextSinceAnnotation on the CA Secret is when the next CA was published
// (RFC 3339).
const nextSinceAnnotation = "theater.troupe.dev/next-ca-since"

// Defaults of a Rotator.
const (
	// DefaultPropagationDelay is how long a new CA is trusted before it
	// signs: a mounted Secret reaches the pods within the kubelet's sync
	// period (about a minute) and the peers reload it within seconds.
	DefaultPropagationDelay = 10 * time.Minute
	// DefaultCheckEvery bounds the time between two checks.
	DefaultCheckEvery = time.Hour
)

// Leaf is one certificate the Rotator keeps: its Secret's name and CN.
type Leaf struct {
	Secret string
	CN     string
}

// Rotator keeps the peer CA and its leaves in Secrets of one namespace:
// it creates them, renews a leaf at 2/3 of its life, and rotates the CA
// at 2/3 of its own in two steps (trust the next CA everywhere, then sign
// with it), so that no peer ever holds a leaf another peer does not
// trust. Run it on the leader only (it is a manager.Runnable that needs
// leader election).
type Rotator struct {
	// Client writes the Secrets; Reader reads them (the API server, not
	// a cache: the manager watches no Secrets).
	Client client.Client
	Reader client.Reader
	// Namespace holds the Secrets; CASecret is the CA's (only the manager
	// reads it); Leaves are the peers'.
	Namespace string
	CASecret  string
	Leaves    []Leaf
	// Now is the clock; nil is time.Now. After waits; nil is time.After.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// CALifetime, LeafLifetime, PropagationDelay and CheckEvery; 0 is
	// the default of each.
	CALifetime, LeafLifetime, PropagationDelay, CheckEvery time.Duration
	Log                                                    logr.Logger
	// OwnerDeployment, when set, is the Deployment of Namespace (the
	// manager's own) that owns the Secrets, so that deleting it (helm
	// uninstall) deletes them too; "" leaves them without an owner.
	OwnerDeployment string

	// owner is OwnerDeployment's reference, read at each pass.
	owner *metav1.OwnerReference
}

// NeedLeaderElection makes the Rotator run on the leader only.
func (r *Rotator) NeedLeaderElection() bool { return true }

func (r *Rotator) defaults() {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.After == nil {
		r.After = time.After
	}
	if r.CALifetime == 0 {
		r.CALifetime = CALifetime
	}
	if r.LeafLifetime == 0 {
		r.LeafLifetime = LeafLifetime
	}
	if r.PropagationDelay == 0 {
		r.PropagationDelay = DefaultPropagationDelay
	}
	if r.CheckEvery == 0 {
		r.CheckEvery = DefaultCheckEvery
	}
}

// Start keeps the Secrets until ctx ends; a failed pass is retried after
// a minute.
func (r *Rotator) Start(ctx context.Context) error {
	r.defaults()
	for {
		next, err := r.Reconcile(ctx)
		wait := next.Sub(r.Now())
		if err != nil {
			r.Log.Error(err, "keeping the peer certificates")
			wait = time.Minute
		}
		wait = max(min(wait, r.CheckEvery), time.Second)
		select {
		case <-ctx.Done():
			return nil
		case <-r.After(wait):
		}
	}
}

// caState is the CA Secret, parsed.
type caState struct {
	cur, next *KeyPair
	prev      *x509.Certificate
	nextSince time.Time
}

// Reconcile makes one pass: the CA, then every leaf. It returns when the
// next pass is due.
func (r *Rotator) Reconcile(ctx context.Context) (time.Time, error) {
	r.defaults()
	now := r.Now()
	if err := r.readOwner(ctx); err != nil {
		return now, err
	}
	sec, st, err := r.readCA(ctx)
	if err != nil {
		return now, err
	}
	changed := sec != nil && !r.owns(sec)
	switch {
	case st.cur == nil || !now.Before(st.cur.Cert.NotAfter):
		// None yet, or unusable (expired, unreadable): a new CA at once.
		if st.cur, err = NewCA("troupe-peer-ca", now, r.CALifetime); err != nil {
			return now, err
		}
		st.next, st.prev = nil, nil
		changed = true
		r.Log.Info("created the peer CA", "notAfter", st.cur.Cert.NotAfter)
	case st.next != nil && !now.Before(st.nextSince.Add(r.PropagationDelay)):
		// The next CA has been trusted long enough: it signs from now.
		st.prev, st.cur, st.next = st.cur.Cert, st.next, nil
		changed = true
		r.Log.Info("the next peer CA signs from now", "notAfter", st.cur.Cert.NotAfter)
	case st.next == nil && !now.Before(DueAt(st.cur.Cert)):
		if st.next, err = NewCA("troupe-peer-ca", now, r.CALifetime); err != nil {
			return now, err
		}
		st.nextSince = now
		changed = true
		r.Log.Info("published the next peer CA", "signsAfter", now.Add(r.PropagationDelay))
	}
	if st.prev != nil && !now.Before(st.prev.NotAfter) {
		st.prev, changed = nil, true
	}
	if changed {
		if err := r.writeCA(ctx, sec, st); err != nil {
			return now, err
		}
	}
	bundle := st.bundle()
	next := now.Add(r.CheckEvery)
	if st.next != nil {
		next = earliest(next, st.nextSince.Add(r.PropagationDelay))
	} else {
		next = earliest(next, DueAt(st.cur.Cert))
	}
	if st.prev != nil {
		next = earliest(next, st.prev.NotAfter)
	}
	var errs []error
	for _, l := range r.Leaves {
		due, err := r.reconcileLeaf(ctx, l, st.cur, bundle, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next = earliest(next, due)
	}
	return next, errors.Join(errs...)
}

// readOwner reads OwnerDeployment's reference (not blocking its
// deletion, which would need rights on it beyond get).
func (r *Rotator) readOwner(ctx context.Context) error {
	if r.OwnerDeployment == "" {
		return nil
	}
	var d appsv1.Deployment
	if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: r.Namespace, Name: r.OwnerDeployment}, &d); err != nil {
		return fmt.Errorf("reading Deployment %s, the owner of the peer Secrets: %w", r.OwnerDeployment, err)
	}
	r.owner = &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID}
	return nil
}

// owns tells whether sec names the owner (true without one).
func (r *Rotator) owns(sec *corev1.Secret) bool {
	if r.owner == nil {
		return true
	}
	for _, o := range sec.OwnerReferences {
		if o.UID == r.owner.UID {
			return true
		}
	}
	return false
}

// setOwner adds the owner to sec's references, once.
func (r *Rotator) setOwner(sec *corev1.Secret) {
	if !r.owns(sec) {
		sec.OwnerReferences = append(sec.OwnerReferences, *r.owner)
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// bundle is what the peers trust: the signing CA, the next one and the
// previous one, whichever there are.
func (st *caState) bundle() []byte {
	b := bytes.Clone(st.cur.CertPEM)
	if st.next != nil {
		b = append(b, st.next.CertPEM...)
	}
	if st.prev != nil {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: st.prev.Raw})...)
	}
	return b
}

func (r *Rotator) readCA(ctx context.Context) (*corev1.Secret, *caState, error) {
	var sec corev1.Secret
	err := r.Reader.Get(ctx, types.NamespacedName{Namespace: r.Namespace, Name: r.CASecret}, &sec)
	if apierrors.IsNotFound(err) {
		return nil, &caState{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the peer CA: %w", err)
	}
	st := &caState{}
	if kp, err := Parse(sec.Data[KeyCACert], sec.Data[KeyCAKey]); err == nil {
		st.cur = kp
	} else {
		r.Log.Error(err, "the peer CA Secret is unusable: making a new CA", "secret", r.CASecret)
		return &sec, st, nil
	}
	if kp, err := Parse(sec.Data[KeyNextCert], sec.Data[KeyNextKey]); err == nil {
		st.next = kp
		st.nextSince, _ = time.Parse(time.RFC3339, sec.Annotations[nextSinceAnnotation])
	}
	if b, _ := pem.Decode(sec.Data[KeyPrevCert]); b != nil {
		st.prev, _ = x509.ParseCertificate(b.Bytes)
	}
	return &sec, st, nil
}

func (r *Rotator) writeCA(ctx context.Context, sec *corev1.Secret, st *caState) error {
	data := map[string][]byte{KeyCACert: st.cur.CertPEM, KeyCAKey: st.cur.KeyPEM}
	ann := map[string]string{}
	if st.next != nil {
		data[KeyNextCert], data[KeyNextKey] = st.next.CertPEM, st.next.KeyPEM
		ann[nextSinceAnnotation] = st.nextSince.UTC().Format(time.RFC3339)
	}
	if st.prev != nil {
		data[KeyPrevCert] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: st.prev.Raw})
	}
	return r.write(ctx, sec, r.CASecret, corev1.SecretTypeOpaque, data, ann)
}

// write creates or updates a Secret (with the resourceVersion read: two
// managers that both think they lead do not overwrite each other's CA).
func (r *Rotator) write(ctx context.Context, sec *corev1.Secret, name string, typ corev1.SecretType, data map[string][]byte, ann map[string]string) error {
	if sec == nil {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "troupe-manager"}, Annotations: ann}, Type: typ, Data: data}
		r.setOwner(sec)
		if err := r.Client.Create(ctx, sec); err != nil {
			return fmt.Errorf("creating Secret %s: %w", name, err)
		}
		return nil
	}
	sec.Data = data
	r.setOwner(sec)
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	delete(sec.Annotations, nextSinceAnnotation)
	for k, v := range ann {
		sec.Annotations[k] = v
	}
	if err := r.Client.Update(ctx, sec); err != nil {
		return fmt.Errorf("updating Secret %s: %w", name, err)
	}
	return nil
}

// reconcileLeaf renews l's Secret when it is missing, unreadable, due, not
// signed by the signing CA, or carries another bundle; it returns when it
// is due next.
func (r *Rotator) reconcileLeaf(ctx context.Context, l Leaf, ca *KeyPair, bundle []byte, now time.Time) (time.Time, error) {
	var sec corev1.Secret
	err := r.Reader.Get(ctx, types.NamespacedName{Namespace: r.Namespace, Name: l.Secret}, &sec)
	var cur *corev1.Secret
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return now, fmt.Errorf("reading Secret %s: %w", l.Secret, err)
	default:
		cur = &sec
		kp, perr := Parse(sec.Data[KeyTLSCert], sec.Data[KeyTLSKey])
		if perr == nil && kp.Cert.Subject.CommonName == l.CN && now.Before(DueAt(kp.Cert)) &&
			kp.Cert.CheckSignatureFrom(ca.Cert) == nil && bytes.Equal(sec.Data[KeyCACert], bundle) && r.owns(&sec) {
			return DueAt(kp.Cert), nil
		}
	}
	kp, err := IssueLeaf(ca, l.CN, now, r.LeafLifetime)
	if err != nil {
		return now, err
	}
	data := map[string][]byte{KeyCACert: bundle, KeyTLSCert: kp.CertPEM, KeyTLSKey: kp.KeyPEM}
	if err := r.write(ctx, cur, l.Secret, corev1.SecretTypeOpaque, data, nil); err != nil {
		return now, err
	}
	r.Log.Info("issued a peer certificate", "secret", l.Secret, "cn", l.CN, "notAfter", kp.Cert.NotAfter)
	return DueAt(kp.Cert), nil
}
