package kubeenv

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// Env is one actor's declared environment, resolved on every lookup
// against the current content of the ConfigMaps and Secrets it references:
// an edit reaches the actor as soon as the watch delivers it, without a
// restart. It implements runtimehandler.EnvSource and is safe for
// concurrent use. Close it when the actor stops.
type Env struct {
	w         *Watcher
	namespace string
	// vars are spec.env by name; from is spec.envFrom in order.
	vars map[string]*envVar
	from []*envFrom
	// objs are the watches this Env holds, one per distinct object.
	objs []*watched

	changes chan struct{}

	mu     sync.Mutex
	closed bool
}

type envVar struct {
	literal  *string
	obj      *watched // nil for a literal
	key      string
	optional bool
	field    string // spec.env[i] (NAME), for messages
}

type envFrom struct {
	obj      *watched
	prefix   string
	optional bool
	field    string
}

// Env returns the environment spec declares for an actor in namespace,
// starting the watches it needs. Only names the spec declares resolve;
// nothing of the host's own environment is ever visible.
func (w *Watcher) Env(namespace string, spec *v1alpha1.ActorSpec) *Env {
	e := &Env{w: w, namespace: namespace, vars: map[string]*envVar{}, changes: make(chan struct{}, 1)}
	held := map[ObjectKey]*watched{}
	watch := func(kind Kind, name string) *watched {
		key := ObjectKey{Kind: kind, Namespace: namespace, Name: name}
		if o := held[key]; o != nil {
			return o
		}
		o := w.acquire(key, e)
		held[key] = o
		e.objs = append(e.objs, o)
		return o
	}
	for i, ev := range spec.Env {
		v := &envVar{field: fmt.Sprintf("spec.env[%d] (%s)", i, ev.Name)}
		switch {
		case ev.Value != nil:
			s := *ev.Value
			v.literal = &s
		case ev.ValueFrom != nil && ev.ValueFrom.ConfigMapKeyRef != nil:
			r := ev.ValueFrom.ConfigMapKeyRef
			v.obj, v.key, v.optional = watch(ConfigMap, r.Name), r.Key, r.Optional != nil && *r.Optional
		case ev.ValueFrom != nil && ev.ValueFrom.SecretKeyRef != nil:
			r := ev.ValueFrom.SecretKeyRef
			v.obj, v.key, v.optional = watch(Secret, r.Name), r.Key, r.Optional != nil && *r.Optional
		default:
			// Admission rejects this; an empty declaration stays unset.
			empty := ""
			v.literal = &empty
		}
		e.vars[ev.Name] = v
	}
	for i, ef := range spec.EnvFrom {
		f := &envFrom{prefix: ef.Prefix, field: fmt.Sprintf("spec.envFrom[%d]", i)}
		switch {
		case ef.ConfigMapRef != nil:
			f.obj, f.optional = watch(ConfigMap, ef.ConfigMapRef.Name), ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional
		case ef.SecretRef != nil:
			f.obj, f.optional = watch(Secret, ef.SecretRef.Name), ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
		default:
			continue
		}
		e.from = append(e.from, f)
	}
	return e
}

// LookupEnv implements runtimehandler.EnvSource: env wins over envFrom,
// and a later envFrom source over an earlier one, as in a Pod. A value read
// from a Secret is marked Secret, so the chain records only its redaction.
func (e *Env) LookupEnv(name string) (runtimehandler.EnvValue, bool) {
	if v, ok := e.vars[name]; ok {
		if v.literal != nil {
			return runtimehandler.EnvValue{Value: *v.literal}, true
		}
		value, _, found := v.obj.lookup(v.key)
		if !found {
			return runtimehandler.EnvValue{}, false
		}
		return runtimehandler.EnvValue{Value: value, Secret: v.obj.key.Kind == Secret}, true
	}
	for i := len(e.from) - 1; i >= 0; i-- {
		f := e.from[i]
		key, ok := strings.CutPrefix(name, f.prefix)
		if !ok || key == "" {
			continue
		}
		if value, _, found := f.obj.lookup(key); found {
			return runtimehandler.EnvValue{Value: value, Secret: f.obj.key.Kind == Secret}, true
		}
	}
	return runtimehandler.EnvValue{}, false
}

// SecretValues implements runtimehandler.EnvSource: the values of every
// variable the spec declares from a Secret (a secretKeyRef's key, every
// key of a secretRef), as they are now and as this process saw them
// before, oldest first. An actor started again after its Secret changed
// scrubs the old value too, which its state may still hold.
func (e *Env) SecretValues() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(e.vars)) {
		v := e.vars[name]
		if v.obj == nil || v.obj.history == nil {
			continue
		}
		out = append(out, v.obj.history.values(v.key)...)
		if value, _, found := v.obj.lookup(v.key); found {
			out = append(out, value)
		}
	}
	for _, f := range e.from {
		if f.obj.history == nil {
			continue
		}
		out = append(out, f.obj.history.all()...)
		if sec, ok := f.obj.object().(*corev1.Secret); ok {
			for _, k := range slices.Sorted(maps.Keys(sec.Data)) {
				out = append(out, string(sec.Data[k]))
			}
		}
	}
	return out
}

// Names returns every variable name the environment holds now (declared
// literals, resolved references and the keys of envFrom sources), sorted.
func (e *Env) Names() []string {
	seen := map[string]bool{}
	for name, v := range e.vars {
		if v.literal != nil {
			seen[name] = true
		} else if _, _, found := v.obj.lookup(v.key); found {
			seen[name] = true
		}
	}
	for _, f := range e.from {
		keys, _ := f.obj.keys()
		for _, k := range keys {
			seen[f.prefix+k] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Objects returns the objects this environment references.
func (e *Env) Objects() []ObjectKey {
	keys := make([]ObjectKey, len(e.objs))
	for i, o := range e.objs {
		keys[i] = o.key
	}
	return keys
}

// WaitSynced waits until every referenced object has been read once, so
// that a first get-env does not answer "unset" for a variable whose
// ConfigMap simply was not listed yet. When ctx ends first, the error says
// which objects could not be read and why.
func (e *Env) WaitSynced(ctx context.Context) error {
	delay := time.Millisecond
	for {
		pending := e.unsynced()
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			msgs := make([]string, len(pending))
			for i, o := range pending {
				msgs[i] = fmt.Sprintf("%s: %s", o.key, e.w.whyUnsynced(ctx, o.key))
			}
			return fmt.Errorf("reading the actor's env sources: %s", strings.Join(msgs, "; "))
		case <-time.After(delay):
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}

func (e *Env) unsynced() []*watched {
	var out []*watched
	for _, o := range e.objs {
		if !o.synced() {
			out = append(out, o)
		}
	}
	return out
}

// Missing describes each required source that does not resolve now: a
// ConfigMap or Secret that does not exist, or a key it lacks, referenced
// without optional: true. Messages name the object and the spec field,
// never a value. Call it after WaitSynced.
func (e *Env) Missing() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(e.vars)) {
		v := e.vars[name]
		if v.literal != nil || v.optional {
			continue
		}
		_, exists, found := v.obj.lookup(v.key)
		switch {
		case !v.obj.synced():
			out = append(out, fmt.Sprintf("%s, referenced by %s, has not been read yet", v.obj.key, v.field))
		case !exists:
			out = append(out, fmt.Sprintf("%s, referenced by %s, does not exist", v.obj.key, v.field))
		case !found:
			out = append(out, fmt.Sprintf("%s has no key %q, referenced by %s", v.obj.key, v.key, v.field))
		}
	}
	for _, f := range e.from {
		if f.optional {
			continue
		}
		if _, exists := f.obj.keys(); !exists {
			if !f.obj.synced() {
				out = append(out, fmt.Sprintf("%s, referenced by %s, has not been read yet", f.obj.key, f.field))
			} else {
				out = append(out, fmt.Sprintf("%s, referenced by %s, does not exist", f.obj.key, f.field))
			}
		}
	}
	return out
}

// Changes receives (coalesced) after any referenced object was added,
// changed or deleted.
func (e *Env) Changes() <-chan struct{} { return e.changes }

func (e *Env) changed() {
	select {
	case e.changes <- struct{}{}:
	default:
	}
}

// Close releases the environment's watches (stopping those no other Env
// shares); lookups afterwards may serve stale values, so close an Env only
// once its actor has stopped. Close is idempotent.
func (e *Env) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.mu.Unlock()
	for _, o := range e.objs {
		e.w.release(o, e)
	}
}

// Redact replaces in s every value of every Secret this environment
// references (as they are now, and as this process saw them before) with
// runtimehandler.Redacted, the marker the chain uses too: a last line of
// defense for text a guest wrote (an init error, a log line) before the
// host puts it in a status, an Event or its log. Values shorter than
// runtimehandler.MinRedactBytes are left, as the runtime handler leaves
// them.
func (e *Env) Redact(s string) string {
	if s == "" {
		return s
	}
	for _, o := range e.objs {
		if o.key.Kind != Secret {
			continue
		}
		var values []string
		if o.history != nil {
			values = o.history.all()
		}
		if sec, ok := o.object().(*corev1.Secret); ok {
			for _, v := range sec.Data {
				values = append(values, string(v))
			}
		}
		for _, v := range values {
			if len(v) >= runtimehandler.MinRedactBytes && strings.Contains(s, v) {
				s = strings.ReplaceAll(s, v, runtimehandler.Redacted)
			}
		}
	}
	return s
}
