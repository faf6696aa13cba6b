package actorspec

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// configPath is the field path of the runtime handler's config in errors.
var configPath = "spec.handlers[" + string(v1alpha1.HandlerRuntime) + "].config"

// EngineConfig returns the engine settings a's spec asks for: the name and
// namespace, the runtime handler's limits, the memory cap, the call
// deadline, the tick interval, the disk budget and the initial state. The caller adds the
// rest (the actor's id, component, directory, env, logger). The spec's
// defaults are applied to a copy first, as the API server does, so a spec
// read from a file means the same here as in a cluster.
//
// It checks what decides these settings (handler types, the handler's
// config and its merge with spec.limits) and nothing else: the rest of the
// spec is admission's to validate (v1alpha1.Actor.Validate without an API
// server). Every error names the field it comes from.
func EngineConfig(a *v1alpha1.Actor) (actorhost.ActorConfig, error) {
	spec := a.Spec.DeepCopy()
	spec.Default()
	for i, h := range spec.Handlers {
		if h.Type != v1alpha1.HandlerRuntime {
			return actorhost.ActorConfig{}, fmt.Errorf("spec.handlers[%d].type: unknown handler type %q (known: %s)", i, h.Type, v1alpha1.HandlerRuntime)
		}
	}
	handler, err := HandlerConfig(spec)
	if err != nil {
		return actorhost.ActorConfig{}, err
	}
	l := spec.Limits
	if l.MaxMemoryPages <= 0 { // would wrap to a huge uint32
		return actorhost.ActorConfig{}, fmt.Errorf("spec.limits.maxMemoryPages is %d: must be at least 1", l.MaxMemoryPages)
	}
	if l.RequestTimeoutDuration() < 0 {
		return actorhost.ActorConfig{}, fmt.Errorf("spec.limits.requestTimeout is %s: must be positive", l.RequestTimeoutDuration())
	}
	if l.CallTimeoutDuration() < 0 {
		return actorhost.ActorConfig{}, fmt.Errorf("spec.limits.callTimeout is %s: must be positive", l.CallTimeoutDuration())
	}
	// The disk budget: a value the engine would read as "no limit" is
	// refused, not taken for one.
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"maxChainBytes", l.MaxChainBytes}, {"chainBytesPerSecond", int64(l.ChainBytesPerSecond)},
		{"chainBurstBytes", int64(l.ChainBurstBytes)}, {"chainEventsPerSecond", int64(l.ChainEventsPerSecond)},
		{"chainBurstEvents", int64(l.ChainBurstEvents)}, {"mailboxMessages", int64(l.MailboxMessages)},
		{"mailboxBytes", int64(l.MailboxBytes)}, {"maxMessageBytes", int64(l.MaxMessageBytes)},
	} {
		if f.v <= 0 {
			return actorhost.ActorConfig{}, fmt.Errorf("spec.limits.%s is %d: must be at least 1", f.name, f.v)
		}
	}
	cfg := actorhost.ActorConfig{
		Name:        a.ManifestName(),
		Namespace:   a.Namespace,
		Handler:     handler,
		MemoryPages: uint32(l.MaxMemoryPages),
		CallTimeout: l.CallTimeoutDuration(),
		// Only actors that export tick are ticked, whatever this says.
		TickInterval: spec.TickIntervalDuration(),
		DiskBudget: &diskbudget.Limits{
			BytesPerSecond: int64(l.ChainBytesPerSecond), BurstBytes: int64(l.ChainBurstBytes),
			EventsPerSecond: int64(l.ChainEventsPerSecond), BurstEvents: int64(l.ChainBurstEvents),
			MaxChainBytes: l.MaxChainBytes,
		},
		MailboxMessages: int(l.MailboxMessages),
		MailboxBytes:    int(l.MailboxBytes),
		MaxMessageBytes: int(l.MaxMessageBytes),
		RequestTimeout:  l.RequestTimeoutDuration(),
	}
	if spec.InitialState != "" {
		cfg.InitialState = []byte(spec.InitialState)
	}
	if f := spec.AcceptMessagesFrom; f != nil {
		p, err := acceptPolicy(f)
		if err != nil {
			return actorhost.ActorConfig{}, err
		}
		cfg.AcceptFrom = p
	}
	return cfg, nil
}

// acceptPolicy is the engine's form of spec.acceptMessagesFrom: the
// selector compiled once, matched against the labels the host knows of a
// sender's namespace (none in `troupe run`).
func acceptPolicy(f *v1alpha1.AcceptMessagesFrom) (*actorhost.AcceptPolicy, error) {
	p := &actorhost.AcceptPolicy{Namespaces: slices.Clone(f.Namespaces)}
	if f.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(f.NamespaceSelector)
		if err != nil {
			return nil, fmt.Errorf("spec.acceptMessagesFrom.namespaceSelector: %w", err)
		}
		p.MatchLabels = func(l map[string]string) bool { return sel.Matches(labels.Set(l)) }
	}
	return p, nil
}

// limitKeys are the runtime handler's config keys that spec.limits sets
// too, under the same names.
var limitKeys = []struct {
	key   string
	limit func(*v1alpha1.Limits) int32
	field func(*runtimehandler.Config) *int
}{
	{"maxLogBytes", func(l *v1alpha1.Limits) int32 { return l.MaxLogBytes }, func(c *runtimehandler.Config) *int { return &c.MaxLogBytes }},
	{"maxEventBytes", func(l *v1alpha1.Limits) int32 { return l.MaxEventBytes }, func(c *runtimehandler.Config) *int { return &c.MaxEventBytes }},
	{"maxMetricNames", func(l *v1alpha1.Limits) int32 { return l.MaxMetricNames }, func(c *runtimehandler.Config) *int { return &c.MaxMetricNames }},
}

// HandlerConfig returns the runtime handler's limits for a defaulted spec
// (v1alpha1.ActorSpec.Default). The rule, where spec.limits and the
// handler's config both set a limit: a key present in
// spec.handlers[runtime].config wins, so config can raise a limit above
// spec.limits' default as well as lower it; a key config leaves out takes
// spec.limits' value. Keys only config has (maxEventTypeBytes) take their
// default when absent.
func HandlerConfig(spec *v1alpha1.ActorSpec) (runtimehandler.Config, error) {
	var raw []byte
	if h, ok := spec.Handler(v1alpha1.HandlerRuntime); ok && h.Config != nil {
		raw = h.Config.JSON()
	}
	cfg, err := runtimehandler.ParseConfig(raw)
	if err != nil {
		return runtimehandler.Config{}, configError(raw, err)
	}
	var present map[string]json.RawMessage
	_ = json.Unmarshal(raw, &present) // ParseConfig accepted it: an object, null or nothing
	for _, k := range limitKeys {
		if hasKey(present, k.key) {
			continue
		}
		*k.field(&cfg) = int(k.limit(&spec.Limits))
		// cfg was valid before this key changed: an error is this key's.
		if err := cfg.Validate(); err != nil {
			return runtimehandler.Config{}, fmt.Errorf("spec.limits.%s: %w", k.key, err)
		}
	}
	return cfg, nil
}

// hasKey reports whether obj has key, matched as ParseConfig matches keys
// (encoding/json: case-insensitively), so that a key ParseConfig took is
// never overridden by spec.limits.
func hasKey(obj map[string]json.RawMessage, key string) bool {
	for k := range obj {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// configError names the config key ParseConfig refused, when one key alone
// is refused, by parsing the keys one at a time.
func configError(raw []byte, err error) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			one, _ := json.Marshal(map[string]json.RawMessage{k: obj[k]})
			if _, kerr := runtimehandler.ParseConfig(one); kerr != nil {
				return fmt.Errorf("%s.%s: %w", configPath, k, kerr)
			}
		}
	}
	return fmt.Errorf("%s: %w", configPath, err)
}
