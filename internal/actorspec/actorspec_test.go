package actorspec

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// withConfig is a spec whose runtime handler has the given config (a JSON
// object, decoded as the API server's or YAML's values are).
func withConfig(config string, limits v1alpha1.Limits) v1alpha1.ActorSpec {
	var c v1alpha1.HandlerConfig
	if err := json.Unmarshal([]byte(config), &c); err != nil {
		panic(fmt.Sprintf("test config %s: %v", config, err))
	}
	return v1alpha1.ActorSpec{
		Handlers: []v1alpha1.Handler{{Type: v1alpha1.HandlerRuntime, Config: c}},
		Limits:   limits,
	}
}

// defaults is the handler's config for a spec that sets nothing: the
// handler's own defaults, which spec.limits' defaults equal.
var defaults = runtimehandler.DefaultConfig()

// with returns defaults changed by set.
func with(set func(c *runtimehandler.Config)) runtimehandler.Config {
	c := defaults
	set(&c)
	return c
}

func TestHandlerConfigMergeRule(t *testing.T) {
	tests := map[string]struct {
		spec v1alpha1.ActorSpec
		want runtimehandler.Config
	}{
		"nothing set: the defaults": {
			spec: v1alpha1.ActorSpec{},
			want: defaults,
		},
		"empty config, null config": {
			spec: withConfig(`null`, v1alpha1.Limits{}),
			want: defaults,
		},
		"config raises a limit above spec.limits' default": {
			spec: withConfig(`{"maxMetricNames": 10000}`, v1alpha1.Limits{}),
			want: with(func(c *runtimehandler.Config) { c.MaxMetricNames = 10000 }),
		},
		"config raises a limit above an explicit spec.limits value": {
			spec: withConfig(`{"maxLogBytes": 5000}`, v1alpha1.Limits{MaxLogBytes: 100}),
			want: with(func(c *runtimehandler.Config) { c.MaxLogBytes = 5000 }),
		},
		"config lowers a limit below spec.limits": {
			spec: withConfig(`{"maxLogBytes": 100, "maxEventBytes": 10}`, v1alpha1.Limits{MaxLogBytes: 5000, MaxEventBytes: 777}),
			want: with(func(c *runtimehandler.Config) { c.MaxLogBytes, c.MaxEventBytes = 100, 10 }),
		},
		"keys config leaves out take spec.limits": {
			spec: withConfig(`{"maxLogBytes": 100}`, v1alpha1.Limits{MaxEventBytes: 777, MaxMetricNames: 20}),
			want: with(func(c *runtimehandler.Config) { c.MaxLogBytes, c.MaxEventBytes, c.MaxMetricNames = 100, 777, 20 }),
		},
		"spec.limits alone, no handlers listed": {
			spec: v1alpha1.ActorSpec{Limits: v1alpha1.Limits{MaxLogBytes: 4096, MaxEventBytes: 1 << 23, MaxMetricNames: 1}},
			want: with(func(c *runtimehandler.Config) { c.MaxLogBytes, c.MaxEventBytes, c.MaxMetricNames = 4096, 1<<23, 1 }),
		},
		"a key only config has": {
			spec: withConfig(`{"maxEventTypeBytes": 64}`, v1alpha1.Limits{MaxMetricNames: 7}),
			want: with(func(c *runtimehandler.Config) { c.MaxEventTypeBytes, c.MaxMetricNames = 64, 7 }),
		},
		// ParseConfig matches keys as encoding/json does; a key it took
		// must not then be overridden by spec.limits.
		"a key ParseConfig matched case-insensitively is config's": {
			spec: withConfig(`{"MaxMetricNames": 500}`, v1alpha1.Limits{MaxMetricNames: 20}),
			want: with(func(c *runtimehandler.Config) { c.MaxMetricNames = 500 }),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: tc.spec}
			cfg, err := EngineConfig(a)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Handler != tc.want {
				t.Fatalf("handler config\n got %+v\nwant %+v", cfg.Handler, tc.want)
			}
		})
	}
}

func TestEngineConfigErrorsNameTheField(t *testing.T) {
	tests := map[string]struct {
		spec v1alpha1.ActorSpec
		want string
	}{
		"unknown config key": {
			spec: withConfig(`{"maxLogBytes": 100, "maxBananas": 1}`, v1alpha1.Limits{}),
			want: `spec.handlers[runtime].config.maxBananas: runtime handler config: json: unknown field "maxBananas"`,
		},
		"config value out of range": {
			spec: withConfig(`{"maxLogBytes": 0}`, v1alpha1.Limits{}),
			want: "spec.handlers[runtime].config.maxLogBytes: runtime handler config: maxLogBytes is 0: must be between 1 and 1048576",
		},
		"config value above the handler's bound": {
			spec: withConfig(`{"maxMetricNames": 10001}`, v1alpha1.Limits{}),
			want: "spec.handlers[runtime].config.maxMetricNames: runtime handler config: maxMetricNames is 10001",
		},
		"config value not an integer": {
			spec: withConfig(`{"maxEventBytes": "1Mi"}`, v1alpha1.Limits{}),
			want: "spec.handlers[runtime].config.maxEventBytes: ",
		},
		"spec.limits value out of the handler's range": {
			spec: withConfig(`{}`, v1alpha1.Limits{MaxLogBytes: 2 << 20}),
			want: "spec.limits.maxLogBytes: runtime handler config: maxLogBytes is 2097152",
		},
		"negative spec.limits value": {
			spec: v1alpha1.ActorSpec{Limits: v1alpha1.Limits{MaxMetricNames: -1}},
			want: "spec.limits.maxMetricNames: ",
		},
		"a spec.limits value config overrides is not checked": {
			spec: withConfig(`{"maxLogBytes": 1}`, v1alpha1.Limits{MaxLogBytes: 2 << 20}),
			want: "",
		},
		"unknown handler type": {
			spec: v1alpha1.ActorSpec{Handlers: []v1alpha1.Handler{{Type: v1alpha1.HandlerRuntime}, {Type: "message-server"}}},
			want: `spec.handlers[1].type: unknown handler type "message-server" (known: runtime)`,
		},
		"negative memory pages": {
			spec: v1alpha1.ActorSpec{Limits: v1alpha1.Limits{MaxMemoryPages: -1}},
			want: "spec.limits.maxMemoryPages is -1",
		},
		// The engine reads a rate of 0 or less as no limit: refused, not
		// taken for one (troupe run has no API server to check it).
		"negative chain byte rate": {
			spec: v1alpha1.ActorSpec{Limits: v1alpha1.Limits{ChainBytesPerSecond: -1}},
			want: "spec.limits.chainBytesPerSecond is -1: must be at least 1",
		},
		"negative chain size": {
			spec: v1alpha1.ActorSpec{Limits: v1alpha1.Limits{MaxChainBytes: -5}},
			want: "spec.limits.maxChainBytes is -5: must be at least 1",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := EngineConfig(&v1alpha1.Actor{Spec: tc.spec})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("err = %v\nwant it to start with %q", err, tc.want)
			}
		})
	}
}

func TestEngineConfigSettings(t *testing.T) {
	tests := map[string]struct {
		actor v1alpha1.Actor
		want  engineSettings
	}{
		"defaults": {
			actor: v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Name: "obj", Namespace: "ns"}},
			want: engineSettings{name: "obj", namespace: "ns", pages: uint32(v1alpha1.DefaultMaxMemoryPages),
				timeout: v1alpha1.DefaultCallTimeout, tick: v1alpha1.DefaultTickInterval, disk: diskbudget.DefaultLimits(),
				mailbox: [2]int{1024, 16 << 20}, maxMessage: 1 << 20, requestTimeout: 2 * time.Second},
		},
		"everything set": {
			actor: v1alpha1.Actor{
				ObjectMeta: metav1.ObjectMeta{Name: "obj", Namespace: "ns"},
				Spec: v1alpha1.ActorSpec{
					Name: "manifest-name", InitialState: "seed",
					TickInterval: &metav1.Duration{Duration: 250 * time.Millisecond},
					Limits: v1alpha1.Limits{MaxMemoryPages: 32, CallTimeout: &metav1.Duration{Duration: 2 * time.Second},
						MaxChainBytes: 5 << 20, ChainBytesPerSecond: 1000, ChainBurstBytes: 2000, ChainEventsPerSecond: 10, ChainBurstEvents: 20,
						MailboxMessages: 7, MailboxBytes: 4096, MaxMessageBytes: 512, RequestTimeout: &metav1.Duration{Duration: 300 * time.Millisecond}},
				},
			},
			want: engineSettings{name: "manifest-name", namespace: "ns", pages: 32,
				timeout: 2 * time.Second, tick: 250 * time.Millisecond, state: "seed", hasState: true,
				disk:    diskbudget.Limits{BytesPerSecond: 1000, BurstBytes: 2000, EventsPerSecond: 10, BurstEvents: 20, MaxChainBytes: 5 << 20},
				mailbox: [2]int{7, 4096}, maxMessage: 512, requestTimeout: 300 * time.Millisecond},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := EngineConfig(&tc.actor)
			if err != nil {
				t.Fatal(err)
			}
			got := engineSettings{name: cfg.Name, namespace: cfg.Namespace, pages: cfg.MemoryPages,
				timeout: cfg.CallTimeout, tick: cfg.TickInterval, state: string(cfg.InitialState), hasState: cfg.InitialState != nil,
				disk: *cfg.DiskBudget, mailbox: [2]int{cfg.MailboxMessages, cfg.MailboxBytes}, maxMessage: cfg.MaxMessageBytes,
				requestTimeout: cfg.RequestTimeout}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if tc.actor.Spec.Handlers != nil || tc.actor.Spec.Limits.MaxLogBytes != 0 {
				t.Error("EngineConfig defaulted the caller's Actor instead of a copy")
			}
		})
	}
}

// engineSettings are the comparable fields of an actorhost.ActorConfig.
type engineSettings struct {
	name, namespace string
	pages           uint32
	timeout, tick   time.Duration
	state           string
	hasState        bool
	disk            diskbudget.Limits
	mailbox         [2]int
	maxMessage      int
	requestTimeout  time.Duration
}

// TestEngineConfigAcceptPolicy: spec.acceptMessagesFrom reaches the engine
// with its selector compiled; none is the same namespace only.
func TestEngineConfigAcceptPolicy(t *testing.T) {
	tests := map[string]struct {
		from       *v1alpha1.AcceptMessagesFrom
		namespaces []string
		matches    map[string]bool // labels "k=v" -> matched
		errField   string
	}{
		"unset": {},
		"names only": {from: &v1alpha1.AcceptMessagesFrom{Namespaces: []string{"a", "b"}}, namespaces: []string{"a", "b"},
			matches: map[string]bool{"team=x": false}},
		"selector": {from: &v1alpha1.AcceptMessagesFrom{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}},
			matches: map[string]bool{"team=x": true, "team=y": false, "": false}},
		"empty selector matches all": {from: &v1alpha1.AcceptMessagesFrom{NamespaceSelector: &metav1.LabelSelector{}},
			matches: map[string]bool{"team=y": true, "": true}},
		"bad selector": {from: &v1alpha1.AcceptMessagesFrom{NamespaceSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Near"}}}},
			errField: "spec.acceptMessagesFrom.namespaceSelector"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := &v1alpha1.Actor{Spec: v1alpha1.ActorSpec{AcceptMessagesFrom: tc.from}}
			cfg, err := EngineConfig(a)
			if tc.errField != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.errField) {
					t.Fatalf("got %v, want an error on %s", err, tc.errField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := cfg.AcceptFrom
			if tc.from == nil {
				if p != nil {
					t.Fatalf("AcceptFrom %+v, want nil", p)
				}
				return
			}
			if fmt.Sprint(p.Namespaces) != fmt.Sprint(tc.namespaces) {
				t.Errorf("namespaces %v, want %v", p.Namespaces, tc.namespaces)
			}
			for l, want := range tc.matches {
				labels := map[string]string{}
				if k, v, ok := strings.Cut(l, "="); ok {
					labels[k] = v
				}
				if got := p.MatchLabels != nil && p.MatchLabels(labels); got != want {
					t.Errorf("labels %q matched %v, want %v", l, got, want)
				}
			}
		})
	}
}
