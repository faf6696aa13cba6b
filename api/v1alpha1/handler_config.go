package v1alpha1

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Bounds of the runtime handler's maxEventTypeBytes, a config key with no
// spec.limits counterpart.
const (
	DefaultMaxEventTypeBytes int32 = 256
	MaxEventTypeBytesLimit   int32 = 4 << 10
)

// ConfigKey is one key a handler's config may hold: an integer from Min to
// Max.
type ConfigKey struct {
	Name     string
	Min, Max int64
}

// RuntimeConfigKeys are the keys of the runtime handler's config. The
// CRD's rules on Handler (markers in actor_types.go) hold the same table;
// the admission tests check the API server against this one, and
// internal/runtimehandler's parser against it too.
var RuntimeConfigKeys = []ConfigKey{
	{Name: "maxLogBytes", Min: 1, Max: int64(MaxLogBytesLimit)},
	{Name: "maxEventTypeBytes", Min: 1, Max: int64(MaxEventTypeBytesLimit)},
	{Name: "maxEventBytes", Min: 1, Max: int64(MaxEventBytesLimit)},
	{Name: "maxMetricNames", Min: 1, Max: int64(MaxMetricNamesLimit)},
}

// ConfigInt is an integer config value, for building a HandlerConfig in Go.
func ConfigInt(v int64) HandlerConfigValue {
	return HandlerConfigValue{JSON: apiextensionsv1.JSON{Raw: []byte(strconv.FormatInt(v, 10))}}
}

// JSON returns c as one JSON object, the form the handlers' parsers read
// (internal/runtimehandler.ParseConfig); nil when c is nil. Values are
// written as stored, so a value that is not JSON (only Go code can build
// one) makes the object invalid and the parser says so.
func (c HandlerConfig) JSON() []byte {
	if c == nil {
		return nil
	}
	keys := slices.Sorted(maps.Keys(c))
	b := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		key, _ := json.Marshal(k) // a string always encodes
		b = append(b, key...)
		b = append(b, ':')
		if raw := c[k].Raw; len(raw) > 0 {
			b = append(b, raw...)
		} else {
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

// Int returns the value of key as an integer; ok is false when c has no
// such key, and err says when the value is not an integer.
func (c HandlerConfig) Int(key string) (v int64, ok bool, err error) {
	raw, ok := c[key]
	if !ok {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw.Raw, &v); err != nil {
		return 0, true, fmt.Errorf("%s must be an integer, not %s", key, raw.Raw)
	}
	return v, true, nil
}

// validateRuntime checks c against RuntimeConfigKeys with the messages of
// the CRD's rules (which name one unknown key where this names all).
func (c HandlerConfig) validateRuntime(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	var unknown []string
	for k := range c {
		if !slices.ContainsFunc(RuntimeConfigKeys, func(ck ConfigKey) bool { return ck.Name == k }) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		errs = append(errs, field.Invalid(p, "object", fmt.Sprintf("unknown key %s in the runtime handler config: the known keys are %s",
			strings.Join(unknown, ", "), knownKeys(RuntimeConfigKeys))))
	}
	for _, ck := range RuntimeConfigKeys {
		v, ok, err := c.Int(ck.Name)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p.Child(ck.Name), string(c[ck.Name].Raw), err.Error()))
		case ok && (v < ck.Min || v > ck.Max):
			// The API server names a key its rule checks config[key], one
			// the schema's type checks config.key.
			errs = append(errs, field.Invalid(p.Key(ck.Name), v, fmt.Sprintf("%s must be between %d and %d", ck.Name, ck.Min, ck.Max)))
		}
	}
	return errs
}

// knownKeys is "a, b and c".
func knownKeys(keys []ConfigKey) string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
