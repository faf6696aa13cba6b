package v1alpha1_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// TestRuntimeConfigKeysMatchTheHandler: the keys and ranges the API admits
// (RuntimeConfigKeys, which TestAdmission checks against the CRD's rules)
// are exactly the ones the runtime handler's parser accepts, so an Actor
// the API server admits never fails at run time for its config, and no
// key the handler knows is refused at admission.
func TestRuntimeConfigKeysMatchTheHandler(t *testing.T) {
	var tags []string
	typ := reflect.TypeFor[runtimehandler.Config]()
	for i := range typ.NumField() {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		tags = append(tags, tag)
	}
	var names []string
	for _, k := range v1alpha1.RuntimeConfigKeys {
		names = append(names, k.Name)
	}
	if !slices.Equal(slices.Sorted(slices.Values(tags)), slices.Sorted(slices.Values(names))) {
		t.Fatalf("runtimehandler.Config keys %v; RuntimeConfigKeys %v", tags, names)
	}
	for _, k := range v1alpha1.RuntimeConfigKeys {
		for v, ok := range map[int64]bool{k.Min: true, k.Max: true, k.Min - 1: false, k.Max + 1: false} {
			_, err := runtimehandler.ParseConfig(fmt.Appendf(nil, `{%q: %d}`, k.Name, v))
			if (err == nil) != ok {
				t.Errorf("runtimehandler.ParseConfig {%s: %d}: %v; the API says valid=%v", k.Name, v, err, ok)
			}
		}
	}
	if got := runtimehandler.DefaultConfig().MaxEventTypeBytes; got != int(v1alpha1.DefaultMaxEventTypeBytes) {
		t.Errorf("runtime handler's default maxEventTypeBytes %d; API doc says %d", got, v1alpha1.DefaultMaxEventTypeBytes)
	}
	if _, err := runtimehandler.ParseConfig([]byte(`{"bogus": 1}`)); err == nil {
		t.Error("runtimehandler.ParseConfig accepts an unknown key")
	}
}

func TestHandlerConfigJSON(t *testing.T) {
	tests := map[string]struct {
		c    v1alpha1.HandlerConfig
		want string
	}{
		"nil":          {c: nil, want: ""},
		"empty":        {c: v1alpha1.HandlerConfig{}, want: "{}"},
		"sorted":       {c: v1alpha1.HandlerConfig{"maxMetricNames": v1alpha1.ConfigInt(7), "maxLogBytes": v1alpha1.ConfigInt(-1)}, want: `{"maxLogBytes":-1,"maxMetricNames":7}`},
		"escaped key":  {c: v1alpha1.HandlerConfig{"a\"b\x01é": v1alpha1.ConfigInt(1)}, want: `{"a\"b\u0001é":1}`},
		"empty value":  {c: v1alpha1.HandlerConfig{"k": {}}, want: `{"k":null}`},
		"stored as is": {c: v1alpha1.HandlerConfig{"k": {JSON: apiextensionsv1.JSON{Raw: []byte(`"x"`)}}}, want: `{"k":"x"}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(tc.c.JSON()); got != tc.want {
				t.Errorf("JSON() = %s; want %s", got, tc.want)
			}
		})
	}
	// What the parser gets is what the user wrote.
	a, err := v1alpha1.ParseActor([]byte(actorYAML("a", "component: {image: x}\nhandlers: [{type: runtime, config: {maxLogBytes: 65536, maxMetricNames: 10000}}]")))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := a.Spec.Handler(v1alpha1.HandlerRuntime)
	cfg, err := runtimehandler.ParseConfig(h.Config.JSON())
	if err != nil || cfg.MaxLogBytes != 65536 || cfg.MaxMetricNames != 10000 {
		t.Errorf("ParseConfig(%s) = %+v, %v", h.Config.JSON(), cfg, err)
	}
	if v, ok, err := h.Config.Int("maxMetricNames"); v != 10000 || !ok || err != nil {
		t.Errorf("Int(maxMetricNames) = %d, %v, %v", v, ok, err)
	}
	if _, ok, err := h.Config.Int("maxEventBytes"); ok || err != nil {
		t.Errorf("Int of an absent key: %v, %v", ok, err)
	}
}
