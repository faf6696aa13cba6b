package v1alpha1_test

import (
	"fmt"
	"strings"

	v1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
)

// Specs shared by the admission suite (CRD schema and CEL rules in a real
// API server) and the Go validation tests, so the two cannot drift apart.

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// validSpecs are accepted by the API server and by Validate.
var validSpecs = map[string]string{
	"minimal image": `
component: {image: registry.example/actors/hello:v1}`,
	"image by digest with pull secrets and pin": `
component:
  image: registry.example/actors/hello@sha256:` + sha + `
  imagePullSecrets: [{name: regcred}]
  sha256: ` + sha,
	"configMap": `
component: {configMap: {name: hello-wasm, key: hello.wasm}}`,
	"url with sha256": `
component: {url: "https://example.com/actors/hello.wasm?v=1", sha256: ` + sha + `}`,
	"everything": `
component: {image: registry.example/actors/hello:v1}
name: hello-manifest
version: "0.1.0"
description: says hello
initialState: '{"count":0}'
handlers: [{type: runtime, config: {}}]
env:
- {name: GREETING, value: hi}
- {name: EMPTY, value: ""}
- {name: my.dotted-name_1, value: x}
- name: DB_PASSWORD
  valueFrom: {secretKeyRef: {name: db, key: password, optional: false}}
- name: FLAG
  valueFrom: {configMapKeyRef: {name: flags, key: new_ui, optional: true}}
envFrom:
- {prefix: FEATURE_, configMapRef: {name: flags, optional: true}}
- {secretRef: {name: creds}}
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: actors, effect: NoSchedule}]
limits: {maxMemoryPages: 65536, callTimeout: 10m, maxLogBytes: 1, maxEventBytes: 8388608, maxMetricNames: 10000,
  maxChainBytes: 1099511627776, chainBytesPerSecond: 1073741824, chainBurstBytes: 1073741824, chainEventsPerSecond: 1000000, chainBurstEvents: 10000000}
restartPolicy: Never
suspend: true`,
	"smallest limits": `
component: {image: hello}
limits: {maxMemoryPages: 1, callTimeout: 1ms, maxLogBytes: 1, maxEventBytes: 1, maxMetricNames: 1,
  maxChainBytes: 1048576, chainBytesPerSecond: 1, chainBurstBytes: 1, chainEventsPerSecond: 1, chainBurstEvents: 1}`,
	"accepts messages from other namespaces": `
component: {image: hello}
acceptMessagesFrom:
  namespaces: [team-a, b]
  namespaceSelector:
    matchLabels: {troupe.dev/messages: allowed}
    matchExpressions: [{key: env, operator: In, values: [dev, test]}, {key: tier, operator: Exists}]`,
	"accepts messages from every namespace": `
component: {image: hello}
acceptMessagesFrom: {namespaceSelector: {}}`,
	"fractional timeout": `
component: {image: hello}
limits: {callTimeout: 1.5s}`,
}

// invalidCase is a spec the API server must reject at admission.
type invalidCase struct {
	spec  string
	field string // the field path the error names
	msg   string // in the API server's message
	goMsg string // in Validate's message, when it words it differently
	// goDecodeError: the spec doesn't fit the Go types, so ParseActor
	// fails before Validate (e.g. a malformed duration).
	goDecodeError bool
}

func (c invalidCase) goMessage() string {
	if c.goMsg != "" {
		return c.goMsg
	}
	return c.msg
}

var invalidSpecs = map[string]invalidCase{
	"no source": {
		spec:  `component: {}`,
		field: "spec.component", msg: "exactly one component source must be set: image, configMap or url",
	},
	"only a pin": {
		spec:  `component: {sha256: ` + sha + `}`,
		field: "spec.component", msg: "exactly one component source must be set",
	},
	"two sources": {
		spec:  `component: {image: hello, url: "https://example.com/a.wasm", sha256: ` + sha + `}`,
		field: "spec.component", msg: "exactly one component source must be set",
	},
	"three sources": {
		spec:  `component: {image: hello, configMap: {name: a, key: b}, url: "https://example.com/a.wasm", sha256: ` + sha + `}`,
		field: "spec.component", msg: "exactly one component source must be set",
	},
	"path": {
		spec:  `component: {path: ./hello.wasm}`,
		field: "spec.component.path", msg: "path is for `troupe run` only",
	},
	"path beside an image": {
		spec:  `component: {image: hello, path: ./hello.wasm}`,
		field: "spec.component.path", msg: "path is for `troupe run` only",
	},
	"url without sha256": {
		spec:  `component: {url: "https://example.com/hello.wasm"}`,
		field: "spec.component.sha256", msg: "sha256 is required with url",
	},
	"http url": {
		spec:  `component: {url: "http://example.com/hello.wasm", sha256: ` + sha + `}`,
		field: "spec.component.url", msg: "url must be an absolute https:// URL",
	},
	"url without host": {
		spec:  `component: {url: "https:///hello.wasm", sha256: ` + sha + `}`,
		field: "spec.component.url", msg: "url must be an absolute https:// URL",
	},
	"relative url": {
		spec:  `component: {url: "hello.wasm", sha256: ` + sha + `}`,
		field: "spec.component.url", msg: "url must be an absolute https:// URL",
	},
	"uppercase sha256": {
		spec:  `component: {image: hello, sha256: ` + strings.ToUpper(sha) + `}`,
		field: "spec.component.sha256", msg: "sha256 must be 64 lowercase hex digits",
	},
	"short sha256": {
		spec:  `component: {image: hello, sha256: abc}`,
		field: "spec.component.sha256", msg: "sha256 must be 64 lowercase hex digits",
	},
	"image with a space": {
		spec:  `component: {image: "hello world"}`,
		field: "spec.component.image", msg: "should match", goMsg: "must not contain whitespace",
	},
	"pull secrets without image": {
		spec:  `component: {configMap: {name: a, key: b}, imagePullSecrets: [{name: regcred}]}`,
		field: "spec.component.imagePullSecrets", msg: "imagePullSecrets needs an image source",
	},
	"empty pull secrets without image": {
		spec:  `component: {url: "https://example.com/a.wasm", sha256: ` + sha + `, imagePullSecrets: []}`,
		field: "spec.component.imagePullSecrets", msg: "imagePullSecrets needs an image source",
	},
	"configMap name not a DNS name": {
		spec:  `component: {configMap: {name: Hello_Wasm, key: hello.wasm}}`,
		field: "spec.component.configMap.name", msg: "should match", goMsg: "RFC 1123 subdomain",
	},
	"configMap key with a slash": {
		spec:  `component: {configMap: {name: a, key: a/b}}`,
		field: "spec.component.configMap.key", msg: "should match", goMsg: "valid config key",
	},
	"env name starting with a digit": {
		spec:  "component: {image: hello}\nenv: [{name: 1BAD, value: x}]",
		field: "spec.env[0].name", msg: "name must consist of letters, digits, '_', '-' or '.', and not start with a digit",
	},
	"env name with =": {
		spec:  "component: {image: hello}\nenv: [{name: A=B, value: x}]",
		field: "spec.env[0].name", msg: "name must consist of letters",
	},
	"env value and valueFrom": {
		spec:  "component: {image: hello}\nenv: [{name: A, value: x, valueFrom: {secretKeyRef: {name: s, key: k}}}]",
		field: "spec.env[0]", msg: "exactly one of value or valueFrom must be set",
	},
	"env without a value": {
		spec:  "component: {image: hello}\nenv: [{name: A}]",
		field: "spec.env[0]", msg: "exactly one of value or valueFrom must be set",
	},
	"valueFrom with both refs": {
		spec:  "component: {image: hello}\nenv: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}, configMapKeyRef: {name: c, key: k}}}]",
		field: "spec.env[0].valueFrom", msg: "exactly one of configMapKeyRef or secretKeyRef must be set",
	},
	"valueFrom with no ref": {
		spec:  "component: {image: hello}\nenv: [{name: A, valueFrom: {}}]",
		field: "spec.env[0].valueFrom", msg: "exactly one of configMapKeyRef or secretKeyRef must be set",
	},
	"secretKeyRef without a key": {
		spec:  "component: {image: hello}\nenv: [{name: A, valueFrom: {secretKeyRef: {name: s}}}]",
		field: "spec.env[0].valueFrom.secretKeyRef.key", msg: "Required value", goMsg: "valid config key",
	},
	"duplicate env names": {
		spec:  "component: {image: hello}\nenv: [{name: A, value: one}, {name: A, value: two}]",
		field: "spec.env[1]", msg: "Duplicate value",
	},
	"envFrom with both refs": {
		spec:  "component: {image: hello}\nenvFrom: [{configMapRef: {name: c}, secretRef: {name: s}}]",
		field: "spec.envFrom[0]", msg: "exactly one of configMapRef or secretRef must be set",
	},
	"envFrom with no ref": {
		spec:  "component: {image: hello}\nenvFrom: [{prefix: X_}]",
		field: "spec.envFrom[0]", msg: "exactly one of configMapRef or secretRef must be set",
	},
	"envFrom prefix starting with a digit": {
		spec:  "component: {image: hello}\nenvFrom: [{prefix: 9X, configMapRef: {name: c}}]",
		field: "spec.envFrom[0].prefix", msg: "prefix must consist of letters",
	},
	"unknown handler type": {
		spec:  "component: {image: hello}\nhandlers: [{type: http-server}]",
		field: "spec.handlers[0].type", msg: `Unsupported value: "http-server": supported values: "runtime"`,
	},
	"duplicate handler": {
		spec:  "component: {image: hello}\nhandlers: [{type: runtime}, {type: runtime}]",
		field: "spec.handlers[1]", msg: "Duplicate value",
	},
	"handler config not an object": {
		spec:  "component: {image: hello}\nhandlers: [{type: runtime, config: 5}]",
		field: "spec.handlers[0].config", msg: "must be of type object", goDecodeError: true,
	},
	"unknown runtime config key": {
		spec:  "component: {image: hello}\nhandlers: [{type: runtime, config: {maxLogBytes: 10, maxLogByts: 10}}]",
		field: "spec.handlers[0].config",
		msg:   "unknown key maxLogByts in the runtime handler config: the known keys are maxLogBytes, maxEventTypeBytes, maxEventBytes and maxMetricNames",
	},
	"too many runtime config keys": {
		spec:  "component: {image: hello}\nhandlers: [{type: runtime, config: {" + manyKeys(17) + "}}]",
		field: "spec.handlers[0].config", msg: "must have at most 16 items", goMsg: "must have at most 16 items",
	},
	"too many memory pages": {
		spec:  "component: {image: hello}\nlimits: {maxMemoryPages: 65537}",
		field: "spec.limits.maxMemoryPages", msg: "less than or equal to 65536", goMsg: "between 1 and 65536",
	},
	"negative memory pages": {
		spec:  "component: {image: hello}\nlimits: {maxMemoryPages: -1}",
		field: "spec.limits.maxMemoryPages", msg: "greater than or equal to 1", goMsg: "between 1 and 65536",
	},
	"tick interval under 100ms": {
		spec:  "component: {image: hello}\ntickInterval: 50ms",
		field: "spec.tickInterval", msg: "tickInterval must be between 100ms and 1h",
	},
	"tick interval over 1h": {
		spec:  "component: {image: hello}\ntickInterval: 2h",
		field: "spec.tickInterval", msg: "tickInterval must be between 100ms and 1h",
	},
	"call timeout under 1ms": {
		spec:  "component: {image: hello}\nlimits: {callTimeout: 500us}",
		field: "spec.limits.callTimeout", msg: "callTimeout must be between 1ms and 10m",
	},
	"call timeout over 10m": {
		spec:  "component: {image: hello}\nlimits: {callTimeout: 10m1s}",
		field: "spec.limits.callTimeout", msg: "callTimeout must be between 1ms and 10m",
	},
	"call timeout not a duration": {
		spec:  "component: {image: hello}\nlimits: {callTimeout: soon}",
		field: "spec.limits.callTimeout", msg: "should match", goDecodeError: true,
	},
	"log bytes over 1MiB": {
		spec:  "component: {image: hello}\nlimits: {maxLogBytes: 1048577}",
		field: "spec.limits.maxLogBytes", msg: "less than or equal to 1048576", goMsg: "between 1 and 1048576",
	},
	"event bytes over 8MiB": {
		spec:  "component: {image: hello}\nlimits: {maxEventBytes: 8388609}",
		field: "spec.limits.maxEventBytes", msg: "less than or equal to 8388608", goMsg: "between 1 and 8388608",
	},
	"metric names over 10000": {
		spec:  "component: {image: hello}\nlimits: {maxMetricNames: 10001}",
		field: "spec.limits.maxMetricNames", msg: "less than or equal to 10000", goMsg: "between 1 and 10000",
	},
	"chain budget below 1MiB": {
		spec:  "component: {image: hello}\nlimits: {maxChainBytes: 1048575}",
		field: "spec.limits.maxChainBytes", msg: "greater than or equal to 1048576", goMsg: "between 1048576 and 1099511627776",
	},
	"chain budget over 1TiB": {
		spec:  "component: {image: hello}\nlimits: {maxChainBytes: 1099511627777}",
		field: "spec.limits.maxChainBytes", msg: "less than or equal to 1099511627776", goMsg: "between 1048576 and 1099511627776",
	},
	"chain byte rate over 1GiB/s": {
		spec:  "component: {image: hello}\nlimits: {chainBytesPerSecond: 1073741825}",
		field: "spec.limits.chainBytesPerSecond", msg: "less than or equal to 1073741824", goMsg: "between 1 and 1073741824",
	},
	"chain event rate below 1": {
		spec:  "component: {image: hello}\nlimits: {chainEventsPerSecond: -1}",
		field: "spec.limits.chainEventsPerSecond", msg: "greater than or equal to 1", goMsg: "between 1 and 1000000",
	},
	"chain event burst over 10M": {
		spec:  "component: {image: hello}\nlimits: {chainBurstEvents: 10000001}",
		field: "spec.limits.chainBurstEvents", msg: "less than or equal to 10000000", goMsg: "between 1 and 10000000",
	},
	"accept from a namespace that is no DNS label": {
		spec:  "component: {image: hello}\nacceptMessagesFrom: {namespaces: [Team_A]}",
		field: "spec.acceptMessagesFrom.namespaces[0]", msg: "should match", goMsg: "a lowercase RFC 1123 label",
	},
	"accept from a namespace name too long": {
		spec:  "component: {image: hello}\nacceptMessagesFrom: {namespaces: [" + strings.Repeat("a", 64) + "]}",
		field: "spec.acceptMessagesFrom.namespaces[0]", msg: "may not be more than 63", goMsg: "no more than 63 characters",
	},
	"accept from a namespace twice": {
		spec:  "component: {image: hello}\nacceptMessagesFrom: {namespaces: [a, a]}",
		field: "spec.acceptMessagesFrom.namespaces[1]", msg: "Duplicate value",
	},
	"accept from too many namespaces": {
		spec:  "component: {image: hello}\nacceptMessagesFrom: {namespaces: [" + manyNames(65) + "]}",
		field: "spec.acceptMessagesFrom.namespaces", msg: "must have at most 64 items",
	},
	"namespace selector with an unknown operator": {
		spec:  "component: {image: hello}\nacceptMessagesFrom: {namespaceSelector: {matchExpressions: [{key: env, operator: Near}]}}",
		field: "spec.acceptMessagesFrom.namespaceSelector", msg: "operator must be In, NotIn, Exists or DoesNotExist",
	},
	"namespace selector with too many expressions": {
		spec:  "component: {image: hello}\nacceptMessagesFrom: {namespaceSelector: {matchExpressions: [" + strings.Repeat("{key: k, operator: Exists}, ", 32) + "{key: k, operator: Exists}]}}",
		field: "spec.acceptMessagesFrom.namespaceSelector", msg: "namespaceSelector.matchExpressions must have at most 32 items",
	},
	"unknown restart policy": {
		spec:  "component: {image: hello}\nrestartPolicy: Sometimes",
		field: "spec.restartPolicy", msg: `Unsupported value: "Sometimes"`,
	},
}

// The runtime handler's config keys, from the Go table the CRD's rules
// must agree with: each key at its bounds is valid, one past them is not.
func init() {
	var atMin, atMax []string
	for _, k := range v1alpha1.RuntimeConfigKeys {
		atMin = append(atMin, fmt.Sprintf("%s: %d", k.Name, k.Min))
		atMax = append(atMax, fmt.Sprintf("%s: %d", k.Name, k.Max))
		for _, v := range []int64{k.Min - 1, k.Max + 1} {
			invalidSpecs[fmt.Sprintf("runtime config %s %d", k.Name, v)] = invalidCase{
				spec:  fmt.Sprintf("component: {image: hello}\nhandlers: [{type: runtime, config: {%s: %d}}]", k.Name, v),
				field: "spec.handlers[0].config[" + k.Name + "]",
				msg:   fmt.Sprintf("%s must be between %d and %d", k.Name, k.Min, k.Max),
			}
		}
	}
	for _, v := range []string{"many", "1.5", "{a: 1}"} {
		invalidSpecs["runtime config value "+v] = invalidCase{
			spec:  "component: {image: hello}\nhandlers: [{type: runtime, config: {maxMetricNames: " + v + "}}]",
			field: "spec.handlers[0].config.maxMetricNames", msg: "must be of type integer", goMsg: "maxMetricNames must be an integer",
		}
	}
	validSpecs["runtime config at its lower bounds"] = "component: {image: hello}\nhandlers: [{type: runtime, config: {" + strings.Join(atMin, ", ") + "}}]"
	validSpecs["runtime config at its upper bounds"] = "component: {image: hello}\nhandlers: [{type: runtime, config: {" + strings.Join(atMax, ", ") + "}}]"
}

func manyNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("ns%d", i)
	}
	return strings.Join(names, ", ")
}

func manyKeys(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d: 1", i)
	}
	return strings.Join(keys, ", ")
}

// actorYAML wraps a spec fragment into an Actor document.
func actorYAML(name, spec string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: theater.troupe.dev/v1alpha1\nkind: Actor\nmetadata: {name: %s}\nspec:\n", name)
	for _, line := range strings.Split(strings.TrimPrefix(spec, "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return b.String()
}
