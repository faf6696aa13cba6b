package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// The permission a caller needs: verb request or send on the Actor, so
// that ordinary Roles grant it.
const (
	ActorGroup    = "theater.troupe.dev"
	ActorResource = "actors"
)

// Decision is an authorization's answer.
type Decision struct {
	Allowed bool
	// Reason is the authorizer's, when it gave one.
	Reason string
}

// Authorizer asks the API server, with a SubjectAccessReview, whether a
// caller may send or request to an Actor. Decisions are kept AllowTTL and
// DenyTTL (10 s each, as k8s.io/apiserver's delegating authorizer keeps
// them): a burst of messages from one caller costs one review instead of
// one API request per message, and a revoked or new grant takes effect
// within that time, as it does for every aggregated API server.
type Authorizer struct {
	SAR      authzclient.SubjectAccessReviewInterface
	AllowTTL time.Duration
	DenyTTL  time.Duration
	// MaxEntries bounds the cache; past it the cache starts over.
	MaxEntries int

	now   func() time.Time
	mu    sync.Mutex
	cache map[string]cachedDecision
}

type cachedDecision struct {
	Decision
	expires time.Time
}

// DefaultDecisionTTL is how long a decision is kept.
const DefaultDecisionTTL = 10 * time.Second

// NewAuthorizer returns an Authorizer with the default cache.
func NewAuthorizer(sar authzclient.SubjectAccessReviewInterface) *Authorizer {
	return &Authorizer{SAR: sar, AllowTTL: DefaultDecisionTTL, DenyTTL: DefaultDecisionTTL, MaxEntries: 10000}
}

// Authorize decides whether u may do verb (request or send) to the Actor
// ns/name. An error is a review that could not be made (the caller gets
// 503 and nothing is delivered).
func (a *Authorizer) Authorize(ctx context.Context, u User, verb, ns, name string) (Decision, error) {
	now := time.Now
	if a.now != nil {
		now = a.now
	}
	key := cacheKey(u, verb, ns, name)
	t := now()
	a.mu.Lock()
	if d, ok := a.cache[key]; ok && t.Before(d.expires) {
		a.mu.Unlock()
		return d.Decision, nil
	}
	a.mu.Unlock()

	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: ActorGroup, Resource: ActorResource, Name: name,
		},
		User: u.Name, UID: u.UID, Groups: u.Groups,
	}}
	if len(u.Extra) > 0 {
		sar.Spec.Extra = make(map[string]authorizationv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			sar.Spec.Extra[k] = v
		}
	}
	res, err := a.SAR.Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return Decision{}, fmt.Errorf("asking the API server whether %s may %s actor %s/%s: %w", u.Name, verb, ns, name, err)
	}
	d := Decision{Allowed: res.Status.Allowed && !res.Status.Denied, Reason: res.Status.Reason}
	ttl := a.DenyTTL
	if d.Allowed {
		ttl = a.AllowTTL
	}
	if ttl > 0 {
		a.mu.Lock()
		if a.cache == nil || (a.MaxEntries > 0 && len(a.cache) >= a.MaxEntries) {
			a.cache = map[string]cachedDecision{}
		}
		a.cache[key] = cachedDecision{Decision: d, expires: t.Add(ttl)}
		a.mu.Unlock()
	}
	return d, nil
}

// cacheKey is everything the decision depends on; NUL cannot occur in
// any of it.
func cacheKey(u User, verb, ns, name string) string {
	var b strings.Builder
	for _, s := range []string{u.Name, u.UID, verb, ns, name} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	groups := slices.Clone(u.Groups)
	slices.Sort(groups)
	for _, g := range groups {
		b.WriteString(g)
		b.WriteByte(1)
	}
	keys := make([]string, 0, len(u.Extra))
	for k := range u.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		for _, v := range u.Extra[k] {
			b.WriteByte(1)
			b.WriteString(v)
		}
	}
	return b.String()
}
