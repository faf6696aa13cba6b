package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
)

// testCrossNamespacePolicy: an Actor's acceptMessagesFrom reaches the
// engine, and its namespaceSelector is matched against the labels the
// host's namespace informer holds, a label change included; actors of
// another namespace are refused by default, external callers never.
func (s *suite) testCrossNamespacePolicy(t *testing.T) {
	g := NewWithT(t)
	h := s.startHost(t)
	ctx := h.ctx()
	labeled, listed, other := s.env.Namespace(t), s.env.Namespace(t), s.env.Namespace(t)
	label := func(name string) {
		var ns corev1.Namespace
		g.Expect(h.c.Get(ctx, client.ObjectKey{Name: name}, &ns)).To(Succeed())
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels["troupe.dev/messages"] = "ok"
		g.Expect(h.c.Update(ctx, &ns)).To(Succeed())
	}
	label(labeled)

	wasm, err := os.ReadFile(filepath.Join("..", "actorhost", "testdata", "messenger.wasm"))
	g.Expect(err).NotTo(HaveOccurred())
	src := h.s.urlSource(wasm)
	h.run("open", v1alpha1.ActorSpec{Component: *src, AcceptMessagesFrom: &v1alpha1.AcceptMessagesFrom{
		Namespaces:        []string{listed},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"troupe.dev/messages": "ok"}},
	}}, 60*time.Second)
	h.run("closed", v1alpha1.ActorSpec{Component: *src}, 60*time.Second)

	from := func(ns string) actorhost.Sender {
		return actorhost.Sender{ActorID: "sender-" + ns, Namespace: ns, Name: "sender"}
	}
	refused := func(sender actorhost.Sender, target string) func() bool {
		return func() bool {
			_, err := h.host.engine.Request(context.Background(), actorhost.Delivery{From: sender, Target: h.ns + "/" + target, Msg: []byte("g")})
			if err != nil && !errors.Is(err, actorhost.ErrNamespaceNotAllowed) {
				t.Fatalf("request from %v to %s: %v", sender, target, err)
			}
			return err != nil
		}
	}
	// The informer fills in after the host starts: poll for the allowed
	// ones, then the refused ones are refused for good.
	g.Eventually(refused(from(labeled), "open")).WithTimeout(10 * time.Second).Should(BeFalse())
	g.Expect(refused(from(listed), "open")()).To(BeFalse())
	g.Expect(refused(from(h.ns), "open")()).To(BeFalse())
	g.Expect(refused(from(h.ns), "closed")()).To(BeFalse())
	g.Expect(refused(from(other), "open")()).To(BeTrue())
	for _, ns := range []string{labeled, listed, other} {
		g.Expect(refused(from(ns), "closed")()).To(BeTrue(), "from %s to closed", ns)
	}
	g.Expect(refused(actorhost.Sender{External: "user:alice"}, "closed")()).To(BeFalse())

	// Labeling a namespace lets its actors in.
	label(other)
	g.Eventually(refused(from(other), "open")).WithTimeout(10 * time.Second).Should(BeFalse())
}
