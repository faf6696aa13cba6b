package peerca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

const day = 24 * time.Hour

// rig is a Rotator over a fake API server and a clock the test moves.
type rig struct {
	t   *testing.T
	c   client.Client
	r   *Rotator
	now time.Time
}

func newRig(t *testing.T) *rig {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).Build()
	g := &rig{t: t, c: c, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g.r = &Rotator{Client: c, Reader: c, Namespace: "troupe-system", CASecret: "t-peer-ca",
		Leaves: []Leaf{{Secret: "t-host-peer-tls", CN: "troupe-host"}, {Secret: "t-gateway-peer-tls", CN: "troupe-gateway"}},
		Now:    func() time.Time { return g.now }}
	return g
}

func (g *rig) pass() time.Time {
	g.t.Helper()
	next, err := g.r.Reconcile(context.Background())
	if err != nil {
		g.t.Fatal(err)
	}
	return next
}

func (g *rig) secret(name string) *corev1.Secret {
	g.t.Helper()
	var s corev1.Secret
	if err := g.c.Get(context.Background(), types.NamespacedName{Namespace: "troupe-system", Name: name}, &s); err != nil {
		g.t.Fatal(err)
	}
	return &s
}

func certs(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// leaf is the Secret's leaf, checked to verify against its own bundle at
// the rig's time (what a peer of that Secret would check).
func (g *rig) leaf(name string) *x509.Certificate {
	g.t.Helper()
	s := g.secret(name)
	kp, err := Parse(s.Data[KeyTLSCert], s.Data[KeyTLSKey])
	if err != nil {
		g.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.Data[KeyCACert])
	if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: g.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		g.t.Fatalf("%s does not verify against its bundle at %s: %v", name, g.now, err)
	}
	return kp.Cert
}

// trusts reports whether the bundle of Secret name verifies cert at the
// rig's time: peers that mount different versions must still agree.
func (g *rig) trusts(bundleOf string, cert *x509.Certificate) bool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(g.secret(bundleOf).Data[KeyCACert])
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: g.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err == nil
}

func TestRotation(t *testing.T) {
	g := newRig(t)
	next := g.pass()
	host0, gw0 := g.leaf("t-host-peer-tls"), g.leaf("t-gateway-peer-tls")
	if host0.Subject.CommonName != "troupe-host" || gw0.Subject.CommonName != "troupe-gateway" {
		t.Fatalf("CNs %s, %s", host0.Subject.CommonName, gw0.Subject.CommonName)
	}
	ca0 := certs(t, g.secret("t-peer-ca").Data[KeyCACert])[0]
	if life := ca0.NotAfter.Sub(g.now); life != CALifetime {
		t.Errorf("CA life %s", life)
	}
	if life := host0.NotAfter.Sub(g.now); life != LeafLifetime {
		t.Errorf("leaf life %s", life)
	}
	if want := g.now.Add(time.Hour); !next.Equal(want) {
		t.Errorf("next check %s, want %s (CheckEvery)", next, want)
	}

	// A pass before anything is due changes nothing.
	g.now = g.now.Add(19 * day)
	g.pass()
	if !g.leaf("t-host-peer-tls").Equal(host0) {
		t.Fatal("renewed before 2/3 of its life")
	}
	// At 2/3 of 30 days: renewed, by the same CA.
	g.now = DueAt(host0).Add(time.Minute)
	g.pass()
	host1 := g.leaf("t-host-peer-tls")
	if host1.Equal(host0) || host1.CheckSignatureFrom(ca0) != nil {
		t.Fatal("not renewed by the same CA at 2/3 of its life")
	}

	// At 2/3 of the CA's life: the next CA is published in every bundle,
	// but the leaves stay the old CA's.
	for g.now.Add(20 * day).Before(DueAt(ca0)) {
		g.now = g.now.Add(20 * day)
		g.pass()
	}
	g.now = DueAt(ca0).Add(time.Minute)
	g.pass()
	before := g.leaf("t-host-peer-tls")
	bundle := certs(t, g.secret("t-host-peer-tls").Data[KeyCACert])
	if len(bundle) != 2 || before.CheckSignatureFrom(ca0) != nil {
		t.Fatalf("bundle of %d CAs; leaf signed by the old CA: %v", len(bundle), before.CheckSignatureFrom(ca0) == nil)
	}
	ca1 := bundle[1]
	// After the propagation delay the next CA signs; the bundle keeps
	// the old CA, so a peer still holding a leaf of the old CA is
	// trusted, and a peer that has not reloaded yet (it trusts old+new)
	// trusts the new leaves.
	g.now = g.now.Add(DefaultPropagationDelay)
	g.pass()
	after := g.leaf("t-host-peer-tls")
	if after.CheckSignatureFrom(ca1) != nil {
		t.Fatal("the next CA does not sign after the propagation delay")
	}
	if !g.trusts("t-host-peer-tls", before) || !g.trusts("t-gateway-peer-tls", after) {
		t.Fatal("peers of the two generations do not trust each other")
	}
	// Once the old CA expired, the bundles drop it.
	g.now = ca0.NotAfter.Add(time.Minute)
	g.pass()
	if n := len(certs(t, g.secret("t-gateway-peer-tls").Data[KeyCACert])); n != 1 {
		t.Fatalf("bundle of %d CAs after the old one expired", n)
	}
	g.leaf("t-gateway-peer-tls")
}

// TestBrokenSecretsReplaced: a leaf with garbage and a CA Secret without a
// key are replaced.
func TestBrokenSecretsReplaced(t *testing.T) {
	g := newRig(t)
	ctx := context.Background()
	for _, s := range []*corev1.Secret{
		{Data: map[string][]byte{KeyCACert: []byte("junk")}},
	} {
		s.Namespace, s.Name = "troupe-system", "t-peer-ca"
		if err := g.c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	leaf := &corev1.Secret{Data: map[string][]byte{KeyTLSCert: []byte("x")}}
	leaf.Namespace, leaf.Name = "troupe-system", "t-host-peer-tls"
	if err := g.c.Create(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	g.pass()
	g.leaf("t-host-peer-tls")
	g.leaf("t-gateway-peer-tls")
}

// TestStartStops: Start waits on its clock and ends with its context.
func TestStartStops(t *testing.T) {
	g := newRig(t)
	waits := make(chan time.Duration, 10)
	g.r.After = func(d time.Duration) <-chan time.Time { waits <- d; return make(chan time.Time) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.r.Start(ctx) }()
	if d := <-waits; d != time.Hour {
		t.Errorf("first wait %s", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	g.leaf("t-host-peer-tls")
}

// TestSecretsBelongToTheManagersDeployment: with an owner, every Secret
// names the Deployment (so helm uninstall, deleting it, deletes them), one
// made before the owner was known included, and the leaves stay as they are
// once they name it.
func TestSecretsBelongToTheManagersDeployment(t *testing.T) {
	g := newRig(t)
	g.pass() // no owner yet: ownerless Secrets, as an older manager made
	if refs := g.secret("t-peer-ca").OwnerReferences; len(refs) != 0 {
		t.Fatalf("without an owner: %v", refs)
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "troupe-system", Name: "t-manager", UID: "uid-1"}}
	if err := g.c.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	g.r.OwnerDeployment = "t-manager"
	caBefore := g.secret("t-peer-ca").Data[KeyCACert]
	g.pass()
	for _, name := range []string{"t-peer-ca", "t-host-peer-tls", "t-gateway-peer-tls"} {
		refs := g.secret(name).OwnerReferences
		if len(refs) != 1 || refs[0].Kind != "Deployment" || refs[0].Name != "t-manager" || refs[0].UID != "uid-1" {
			t.Errorf("%s: owner references %v, want the Deployment t-manager", name, refs)
		}
	}
	if !bytes.Equal(g.secret("t-peer-ca").Data[KeyCACert], caBefore) {
		t.Error("taking ownership changed the CA")
	}
	leaf := g.leaf("t-host-peer-tls")
	g.pass()
	if !g.leaf("t-host-peer-tls").Equal(leaf) {
		t.Error("a leaf that names its owner was issued again")
	}
	g.r.OwnerDeployment = "missing"
	if _, err := g.r.Reconcile(context.Background()); err == nil {
		t.Error("a missing owner Deployment: no error")
	}
}
