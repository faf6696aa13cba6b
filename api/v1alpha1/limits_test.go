package v1alpha1

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/troupe-dev/troupe/internal/limits"
)

// TestCRDMarkersMatchTheLimits reads the generated CRD and holds every
// default, minimum and maximum its +kubebuilder markers put on a limit (and
// the bounds in the CEL rules of the durations) to internal/limits, which
// the engine and the CLI use: a marker edited alone fails here. A property
// of the same name anywhere in the schema (a handler's config, say) is held
// to the same numbers.
func TestCRDMarkersMatchTheLimits(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "theater.troupe.dev_actors.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	type bounds struct {
		def, lo, hi int64
	}
	sizes := map[string]bounds{
		"maxMemoryPages":    {limits.DefaultMemoryPages, 1, limits.MaxMemoryPages},
		"maxLogBytes":       {limits.DefaultMaxLogBytes, 1, limits.MaxLogBytesLimit},
		"maxEventBytes":     {limits.DefaultMaxEventBytes, 1, limits.MaxEventBytesLimit},
		"maxEventTypeBytes": {limits.DefaultMaxEventTypeBytes, 1, limits.MaxEventTypeBytesLimit},
		"maxMetricNames":    {limits.DefaultMaxMetricNames, 1, limits.MaxMetricNamesLimit},

		"maxChainBytes":        {limits.DefaultMaxChainBytes, limits.MinMaxChainBytes, limits.MaxMaxChainBytes},
		"chainBytesPerSecond":  {limits.DefaultChainBytesPerSecond, 1, limits.MaxChainBytesPerSecond},
		"chainBurstBytes":      {limits.DefaultChainBurstBytes, 1, limits.MaxChainBurstBytes},
		"chainEventsPerSecond": {limits.DefaultChainEventsPerSecond, 1, limits.MaxChainEventsPerSecond},
		"chainBurstEvents":     {limits.DefaultChainBurstEvents, 1, limits.MaxChainBurstEvents},

		"mailboxMessages": {limits.DefaultMailboxMessages, 1, limits.MaxMailboxMessages},
		"mailboxBytes":    {limits.DefaultMailboxBytes, 1, limits.MaxMailboxBytes},
		"maxMessageBytes": {limits.DefaultMaxMessageBytes, 1, limits.MaxMessageBytesLimit},
	}
	type durations struct {
		def, lo, hi time.Duration
	}
	durs := map[string]durations{
		"callTimeout":    {limits.DefaultCallTimeout, limits.MinCallTimeout, limits.MaxCallTimeout},
		"requestTimeout": {limits.DefaultRequestTimeout, limits.MinRequestTimeout, limits.MaxRequestTimeout},
		"tickInterval":   {limits.DefaultTickInterval, limits.MinTickInterval, limits.MaxTickInterval},
	}
	// Every limit the API has must be found at least once.
	seen := map[string]int{}
	celBound := regexp.MustCompile(`duration\(self\) (>=|<=) duration\('([^']+)'\)`)
	var walk func(path string, s *apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s *apiextensionsv1.JSONSchemaProps) {
		if s == nil {
			return
		}
		for name, p := range s.Properties {
			field := path + "." + name
			if want, ok := sizes[name]; ok {
				seen[name]++
				if p.Default != nil {
					var def int64
					if err := json.Unmarshal(p.Default.Raw, &def); err != nil || def != want.def {
						t.Errorf("%s: default %s, want %d", field, p.Default.Raw, want.def)
					}
				}
				if got := number(p.Minimum); got != want.lo {
					t.Errorf("%s: minimum %d, want %d", field, got, want.lo)
				}
				if got := number(p.Maximum); got != want.hi {
					t.Errorf("%s: maximum %d, want %d", field, got, want.hi)
				}
			}
			if want, ok := durs[name]; ok {
				seen[name]++
				if p.Default != nil {
					var def string
					_ = json.Unmarshal(p.Default.Raw, &def)
					if d, err := time.ParseDuration(def); err != nil || d != want.def {
						t.Errorf("%s: default %s, want %s", field, p.Default.Raw, want.def)
					}
				}
				var lo, hi []time.Duration
				for _, rule := range p.XValidations {
					for _, m := range celBound.FindAllStringSubmatch(rule.Rule, -1) {
						d, err := time.ParseDuration(m[2])
						if err != nil {
							t.Errorf("%s: rule %q: %v", field, rule.Rule, err)
							continue
						}
						if m[1] == ">=" {
							lo = append(lo, d)
						} else {
							hi = append(hi, d)
						}
					}
					if strings.Contains(rule.Message, "between") && !strings.Contains(rule.Message, durationText(want.lo)+" and "+durationText(want.hi)) {
						t.Errorf("%s: message %q does not name %s and %s", field, rule.Message, durationText(want.lo), durationText(want.hi))
					}
				}
				if len(lo) != 1 || lo[0] != want.lo || len(hi) != 1 || hi[0] != want.hi {
					t.Errorf("%s: CEL bounds %v..%v, want %s..%s", field, lo, hi, want.lo, want.hi)
				}
			}
			walk(field, &p)
		}
		if s.Items != nil {
			walk(path+"[]", s.Items.Schema)
		}
		if s.AdditionalProperties != nil {
			walk(path+"{}", s.AdditionalProperties.Schema)
		}
	}
	for _, v := range crd.Spec.Versions {
		if v.Schema != nil {
			walk(v.Name, v.Schema.OpenAPIV3Schema)
		}
	}
	for _, name := range []string{"maxMemoryPages", "maxLogBytes", "maxEventBytes", "maxMetricNames", "callTimeout", "tickInterval",
		"maxChainBytes", "chainBytesPerSecond", "chainBurstBytes", "chainEventsPerSecond", "chainBurstEvents"} {
		if seen[name] == 0 {
			t.Errorf("the CRD has no property %s", name)
		}
	}
}

// number is a schema bound, -1 when there is none.
func number(f *float64) int64 {
	if f == nil {
		return -1
	}
	return int64(*f)
}

// durationText spells d as the CRD's markers do: 1ms, 10m, 1h.
func durationText(d time.Duration) string {
	s := d.String()
	for _, zero := range []string{"0s", "0m"} {
		if len(s) > len(zero) && strings.HasSuffix(s, zero) {
			s = strings.TrimSuffix(s, zero)
		}
	}
	return s
}
