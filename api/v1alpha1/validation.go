package v1alpha1

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// ValidationOptions changes what Validate accepts.
type ValidationOptions struct {
	// AllowPath accepts component.path, a local file: `troupe run` reads
	// it, the API server rejects it.
	AllowPath bool
}

var (
	envNameRE = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate checks a's spec against the rules the CRD enforces at admission
// (the same messages, minus what only the schema's types can express), for
// Actors read without an API server. A zero limit counts as unset, as the
// API server's defaulting would fill it.
func (a *Actor) Validate(opts ValidationOptions) error {
	if a.APIVersion != "" && a.APIVersion != GroupVersion.String() {
		return fmt.Errorf("apiVersion %q: want %s", a.APIVersion, GroupVersion)
	}
	if a.Kind != "" && a.Kind != "Actor" {
		return fmt.Errorf("kind %q: want Actor", a.Kind)
	}
	return a.Spec.Validate(field.NewPath("spec"), opts).ToAggregate()
}

// Validate checks s against the CRD's rules; see Actor.Validate.
func (s *ActorSpec) Validate(p *field.Path, opts ValidationOptions) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, s.Component.validate(p.Child("component"), opts)...)
	errs = append(errs, maxLen(p.Child("name"), s.Name, 253)...)
	errs = append(errs, maxLen(p.Child("version"), s.Version, 128)...)
	errs = append(errs, maxLen(p.Child("description"), s.Description, 1024)...)
	errs = append(errs, maxLen(p.Child("initialState"), s.InitialState, 1<<20)...)

	errs = append(errs, maxItems(p.Child("handlers"), len(s.Handlers), 16)...)
	seen := map[HandlerType]bool{}
	for i, h := range s.Handlers {
		hp := p.Child("handlers").Index(i)
		if !knownHandler(h.Type) {
			errs = append(errs, field.NotSupported(hp.Child("type"), h.Type, KnownHandlerTypes))
		}
		if seen[h.Type] {
			errs = append(errs, field.Duplicate(hp, h.Type))
		}
		seen[h.Type] = true
		if len(h.Config) > 16 {
			errs = append(errs, field.TooMany(hp.Child("config"), len(h.Config), 16))
		}
		if h.Type == HandlerRuntime {
			errs = append(errs, h.Config.validateRuntime(hp.Child("config"))...)
		}
	}

	errs = append(errs, maxItems(p.Child("env"), len(s.Env), 256)...)
	names := map[string]bool{}
	for i, e := range s.Env {
		errs = append(errs, e.validate(p.Child("env").Index(i))...)
		if names[e.Name] {
			errs = append(errs, field.Duplicate(p.Child("env").Index(i), e.Name))
		}
		names[e.Name] = true
	}
	errs = append(errs, maxItems(p.Child("envFrom"), len(s.EnvFrom), 32)...)
	for i, e := range s.EnvFrom {
		errs = append(errs, e.validate(p.Child("envFrom").Index(i))...)
	}
	if len(s.NodeSelector) > 64 {
		errs = append(errs, field.TooMany(p.Child("nodeSelector"), len(s.NodeSelector), 64))
	}
	errs = append(errs, maxItems(p.Child("tolerations"), len(s.Tolerations), 64)...)
	errs = append(errs, s.Limits.validate(p.Child("limits"))...)
	if t := s.TickInterval; t != nil && (t.Duration < MinTickInterval || t.Duration > MaxTickInterval) {
		errs = append(errs, field.Invalid(p.Child("tickInterval"), t.Duration.String(), "tickInterval must be between 100ms and 1h"))
	}
	if f := s.AcceptMessagesFrom; f != nil {
		errs = append(errs, f.validate(p.Child("acceptMessagesFrom"))...)
	}
	switch s.RestartPolicy {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		errs = append(errs, field.NotSupported(p.Child("restartPolicy"), s.RestartPolicy,
			[]RestartPolicy{RestartAlways, RestartOnFailure, RestartNever}))
	}
	return errs
}

// Bounds of spec.acceptMessagesFrom, which the CRD's schema and rules
// enforce too.
const (
	maxAcceptNamespaces    = 64
	maxSelectorExpressions = 32
	maxSelectorLabels      = 64
)

func (f *AcceptMessagesFrom) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	np := p.Child("namespaces")
	errs = append(errs, maxItems(np, len(f.Namespaces), maxAcceptNamespaces)...)
	seen := map[string]bool{}
	for i, ns := range f.Namespaces {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(np.Index(i), ns, msg))
		}
		if seen[ns] {
			errs = append(errs, field.Duplicate(np.Index(i), ns))
		}
		seen[ns] = true
	}
	if sel := f.NamespaceSelector; sel != nil {
		sp := p.Child("namespaceSelector")
		if len(sel.MatchExpressions) > maxSelectorExpressions {
			errs = append(errs, field.Invalid(sp, len(sel.MatchExpressions), "namespaceSelector.matchExpressions must have at most 32 items"))
		}
		if len(sel.MatchLabels) > maxSelectorLabels {
			errs = append(errs, field.Invalid(sp, len(sel.MatchLabels), "namespaceSelector.matchLabels must have at most 64 items"))
		}
		// The operator's error as the CRD's rule words it, on the same
		// field; the rest (keys, values) as Kubernetes checks selectors.
		for _, e := range sel.MatchExpressions {
			switch e.Operator {
			case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
			default:
				errs = append(errs, field.Invalid(sp, string(e.Operator), "namespaceSelector.matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist"))
			}
		}
		for _, e := range metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, sp) {
			if !strings.HasSuffix(e.Field, ".operator") {
				errs = append(errs, e)
			}
		}
	}
	return errs
}

func (c *ComponentSource) validate(p *field.Path, opts ValidationOptions) field.ErrorList {
	var errs field.ErrorList
	n := 0
	for _, set := range []bool{c.Image != "", c.ConfigMap != nil, c.URL != "", c.Path != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		msg := "exactly one component source must be set: image, configMap or url"
		if opts.AllowPath {
			msg = "exactly one component source must be set: image, configMap, url or path"
		}
		errs = append(errs, field.Invalid(p, "object", msg))
	}
	if c.Path != "" && !opts.AllowPath {
		errs = append(errs, field.Invalid(p.Child("path"), c.Path,
			"path is for `troupe run` only, the API server cannot read your files: use image, configMap or url"))
	}
	errs = append(errs, maxLen(p.Child("path"), c.Path, 4096)...)
	if c.Image != "" {
		errs = append(errs, maxLen(p.Child("image"), c.Image, 1024)...)
		if strings.ContainsAny(c.Image, " \t\n\r\v\f") {
			errs = append(errs, field.Invalid(p.Child("image"), c.Image, "image must not contain whitespace"))
		}
	}
	// has() in the CRD rule is true for an explicit empty list too.
	if c.ImagePullSecrets != nil && c.Image == "" {
		errs = append(errs, field.Invalid(p.Child("imagePullSecrets"), "array", "imagePullSecrets needs an image source"))
	}
	errs = append(errs, maxItems(p.Child("imagePullSecrets"), len(c.ImagePullSecrets), 16)...)
	for i, s := range c.ImagePullSecrets {
		errs = append(errs, objectName(p.Child("imagePullSecrets").Index(i).Child("name"), s.Name)...)
	}
	if c.ConfigMap != nil {
		errs = append(errs, objectName(p.Child("configMap", "name"), c.ConfigMap.Name)...)
		errs = append(errs, keyName(p.Child("configMap", "key"), c.ConfigMap.Key)...)
	}
	if c.URL != "" {
		errs = append(errs, maxLen(p.Child("url"), c.URL, 2048)...)
		u, err := url.ParseRequestURI(c.URL)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" {
			errs = append(errs, field.Invalid(p.Child("url"), c.URL, "url must be an absolute https:// URL"))
		}
		if c.SHA256 == "" {
			errs = append(errs, field.Invalid(p.Child("sha256"), "object",
				"sha256 is required with url: the SHA-256 of the module, 64 lowercase hex digits"))
		}
	}
	if c.SHA256 != "" && !sha256RE.MatchString(c.SHA256) {
		errs = append(errs, field.Invalid(p.Child("sha256"), c.SHA256, "sha256 must be 64 lowercase hex digits"))
	}
	return errs
}

func (e *EnvVar) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, envName(p.Child("name"), e.Name, "name")...)
	if (e.Value != nil) == (e.ValueFrom != nil) {
		errs = append(errs, field.Invalid(p, "object", "exactly one of value or valueFrom must be set"))
	}
	if e.Value != nil {
		errs = append(errs, maxLen(p.Child("value"), *e.Value, 1<<20)...)
	}
	if f := e.ValueFrom; f != nil {
		fp := p.Child("valueFrom")
		if (f.ConfigMapKeyRef != nil) == (f.SecretKeyRef != nil) {
			errs = append(errs, field.Invalid(fp, "object", "exactly one of configMapKeyRef or secretKeyRef must be set"))
		}
		if r := f.ConfigMapKeyRef; r != nil {
			errs = append(errs, objectName(fp.Child("configMapKeyRef", "name"), r.Name)...)
			errs = append(errs, keyName(fp.Child("configMapKeyRef", "key"), r.Key)...)
		}
		if r := f.SecretKeyRef; r != nil {
			errs = append(errs, objectName(fp.Child("secretKeyRef", "name"), r.Name)...)
			errs = append(errs, keyName(fp.Child("secretKeyRef", "key"), r.Key)...)
		}
	}
	return errs
}

func (e *EnvFromSource) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if e.Prefix != "" {
		errs = append(errs, envName(p.Child("prefix"), e.Prefix, "prefix")...)
		errs = append(errs, maxLen(p.Child("prefix"), e.Prefix, 128)...)
	}
	if (e.ConfigMapRef != nil) == (e.SecretRef != nil) {
		errs = append(errs, field.Invalid(p, "object", "exactly one of configMapRef or secretRef must be set"))
	}
	if e.ConfigMapRef != nil {
		errs = append(errs, objectName(p.Child("configMapRef", "name"), e.ConfigMapRef.Name)...)
	}
	if e.SecretRef != nil {
		errs = append(errs, objectName(p.Child("secretRef", "name"), e.SecretRef.Name)...)
	}
	return errs
}

func (l *Limits) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, intRange(p.Child("maxMemoryPages"), l.MaxMemoryPages, MaxMemoryPages)...)
	errs = append(errs, intRange(p.Child("maxLogBytes"), l.MaxLogBytes, MaxLogBytesLimit)...)
	errs = append(errs, intRange(p.Child("maxEventBytes"), l.MaxEventBytes, MaxEventBytesLimit)...)
	errs = append(errs, intRange(p.Child("maxMetricNames"), l.MaxMetricNames, MaxMetricNamesLimit)...)
	errs = append(errs, intRange(p.Child("chainBytesPerSecond"), l.ChainBytesPerSecond, MaxChainBytesPerSecond)...)
	errs = append(errs, intRange(p.Child("chainBurstBytes"), l.ChainBurstBytes, MaxChainBurstBytes)...)
	errs = append(errs, intRange(p.Child("chainEventsPerSecond"), l.ChainEventsPerSecond, MaxChainEventsPerSecond)...)
	errs = append(errs, intRange(p.Child("chainBurstEvents"), l.ChainBurstEvents, MaxChainBurstEvents)...)
	if v := l.MaxChainBytes; v != 0 && (v < MinMaxChainBytes || v > MaxMaxChainBytes) {
		errs = append(errs, field.Invalid(p.Child("maxChainBytes"), v, fmt.Sprintf("must be between %d and %d", MinMaxChainBytes, MaxMaxChainBytes)))
	}
	errs = append(errs, intRange(p.Child("mailboxMessages"), l.MailboxMessages, MaxMailboxMessages)...)
	errs = append(errs, intRange(p.Child("mailboxBytes"), l.MailboxBytes, MaxMailboxBytes)...)
	errs = append(errs, intRange(p.Child("maxMessageBytes"), l.MaxMessageBytes, MaxMessageBytesLimit)...)
	if t := l.RequestTimeout; t != nil && (t.Duration < MinRequestTimeout || t.Duration > MaxRequestTimeout) {
		errs = append(errs, field.Invalid(p.Child("requestTimeout"), t.Duration.String(), "requestTimeout must be between 1ms and 10m"))
	}
	if t := l.CallTimeout; t != nil && (t.Duration < MinCallTimeout || t.Duration > MaxCallTimeout) {
		errs = append(errs, field.Invalid(p.Child("callTimeout"), t.Duration.String(), "callTimeout must be between 1ms and 10m"))
	}
	return errs
}

// intRange accepts 0 (unset: the default applies) and 1..max.
func intRange(p *field.Path, v, max int32) field.ErrorList {
	if v < 0 || v > max {
		return field.ErrorList{field.Invalid(p, v, fmt.Sprintf("must be between 1 and %d", max))}
	}
	return nil
}

func knownHandler(t HandlerType) bool {
	for _, k := range KnownHandlerTypes {
		if t == k {
			return true
		}
	}
	return false
}

func envName(p *field.Path, v, what string) field.ErrorList {
	if !envNameRE.MatchString(v) {
		return field.ErrorList{field.Invalid(p, v, what+" must consist of letters, digits, '_', '-' or '.', and not start with a digit")}
	}
	return maxLen(p, v, 256)
}

func objectName(p *field.Path, v string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

func keyName(p *field.Path, v string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

func maxLen(p *field.Path, v string, max int) field.ErrorList {
	if len(v) > max {
		return field.ErrorList{field.TooLong(p, "", max)}
	}
	return nil
}

func maxItems(p *field.Path, n, max int) field.ErrorList {
	if n > max {
		return field.ErrorList{field.TooMany(p, n, max)}
	}
	return nil
}

// ParseActor decodes one Actor from YAML or JSON, refusing unknown fields
// (a typo would otherwise be dropped silently) and other kinds, and applies
// the API server's defaults. It does not validate; call Validate.
func ParseActor(data []byte) (*Actor, error) {
	var a Actor
	if err := yaml.UnmarshalStrict(data, &a); err != nil {
		return nil, fmt.Errorf("decoding Actor: %w", err)
	}
	if a.APIVersion != GroupVersion.String() || a.Kind != "Actor" {
		return nil, fmt.Errorf("decoding Actor: apiVersion %q kind %q: want %s Actor", a.APIVersion, a.Kind, GroupVersion)
	}
	a.Default()
	return &a, nil
}
