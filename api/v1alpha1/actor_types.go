package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Actor is one WebAssembly actor: its component, its manifest, and where and
// how it runs. A host pod on the node the controller picks runs it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=act,categories=troupe
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`,description="Where the actor is in its life"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="Whether the actor's host runs its current assignment (the Ready condition)"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.nodeName`,description="The node whose host runs the actor"
// +kubebuilder:printcolumn:name="Head",type=string,JSONPath=`.status.chain.headShort`,description="Head of the actor's state chain (first 12 hex digits)"
// +kubebuilder:printcolumn:name="Length",type=integer,JSONPath=`.status.chain.length`,description="Number of events in the state chain"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.status.hostPod`,priority=1,description="The host pod that runs the actor (kubectl get -o wide)"
// +kubebuilder:printcolumn:name="Epoch",type=integer,JSONPath=`.status.epoch`,priority=1,description="The assignment's epoch: it grows each time the actor is placed anew (kubectl get -o wide)"
// +kubebuilder:selectablefield:JSONPath=`.status.nodeName`
type Actor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the actor's manifest: what to run and with which limits.
	// +required
	Spec ActorSpec `json:"spec"`

	// status is what the controller and the actor's host last observed.
	// +optional
	Status ActorStatus `json:"status,omitempty"`
}

// ActorSpec is an actor's manifest.
type ActorSpec struct {
	// component is where the actor's WebAssembly module comes from.
	// +required
	Component ComponentSource `json:"component"`

	// name is the actor's manifest name, returned by get-actor-name.
	// Defaults to metadata.name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// version is the actor's own version, informational.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Version string `json:"version,omitempty"`

	// description says what the actor does, informational.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// initialState is the state handed to the actor's init the first time it
	// starts; later starts get the state it last returned.
	// +optional
	// +kubebuilder:validation:MaxLength=1048576
	InitialState string `json:"initialState,omitempty"`

	// handlers are the host interfaces the actor may import, at most one of
	// each type. Defaults to the runtime handler alone.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:default={{type: runtime}}
	Handlers []Handler `json:"handlers,omitempty"`

	// env declares the environment variables the actor may read with
	// get-env. Nothing else is visible to it, not even the host's own
	// environment. Names are unique.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Env []EnvVar `json:"env,omitempty"`

	// envFrom declares every key of a ConfigMap or Secret as an environment
	// variable. A key also named in env takes env's value.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	EnvFrom []EnvFromSource `json:"envFrom,omitempty"`

	// nodeSelector restricts the actor to hosts on nodes with these labels.
	// +optional
	// +mapType=atomic
	// +kubebuilder:validation:MaxProperties=64
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations let the actor be placed on hosts whose nodes carry
	// matching taints, as a Pod's tolerations do.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// limits bound the resources the actor may use.
	// +optional
	// +kubebuilder:default={}
	Limits Limits `json:"limits,omitempty"`

	// restartPolicy says whether the manager restarts the actor when its
	// run ends: Always, OnFailure (after a trap, a timeout or an init
	// error; with backoff) or Never. An actor whose spec its host found
	// invalid (Ready reason InvalidSpec) is never restarted until its spec
	// changes.
	// +optional
	// +kubebuilder:default=OnFailure
	RestartPolicy RestartPolicy `json:"restartPolicy,omitempty"`

	// restorePolicy says what a host does when the actor moved and the
	// archive holds less of its chain than status.chain says it had (the
	// old node died before uploading its newest events): FromArchive
	// starts from what the archive holds, and the ArchiveGap condition
	// and a Warning Event name the events lost; WaitForNode waits, with
	// Ready=False reason WaitingForNode, until the old node's host is back
	// and has uploaded them. Without an archive it has no effect.
	// +optional
	// +kubebuilder:default=FromArchive
	RestorePolicy RestorePolicy `json:"restorePolicy,omitempty"`

	// suspend stops the actor, keeping its state and chain, until it is
	// set to false again.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// tickInterval is how often the host calls the actor's optional tick
	// export (troupe:actor/ticker#tick, see wit/troupe-ticker.wit) after
	// init, from 100ms to 1h. Actors that don't export tick are never
	// called after init.
	// +optional
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('100ms') && duration(self) <= duration('1h'))",message="tickInterval must be between 100ms and 1h"
	TickInterval *metav1.Duration `json:"tickInterval,omitempty"`

	// acceptMessagesFrom says which other namespaces' actors may send the
	// actor messages and requests. Actors in its own namespace always may;
	// an actor in another namespace only when that namespace is listed in
	// namespaces or its labels match namespaceSelector. Unset or empty:
	// its own namespace only. Callers from outside the cluster's actors
	// (kubectl troupe, the gateway) are not subject to it: RBAC (verbs
	// send and request on actors) decides for them. A refused message
	// fails with reason NamespaceNotAllowed.
	// +optional
	AcceptMessagesFrom *AcceptMessagesFrom `json:"acceptMessagesFrom,omitempty"`
}

// AcceptMessagesFrom names the namespaces, besides its own, whose actors
// may message an actor. A namespace is accepted when either field accepts
// it.
type AcceptMessagesFrom struct {
	// namespaces are namespace names whose actors are accepted.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`

	// namespaceSelector accepts the actors of every namespace whose labels
	// it matches, as a NetworkPolicy's namespaceSelector does. An empty
	// selector ({}) matches every namespace. `troupe run` has no
	// namespace labels: there a selector matches no namespace.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || size(self.matchExpressions) <= 32",message="namespaceSelector.matchExpressions must have at most 32 items"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || size(self.matchLabels) <= 64",message="namespaceSelector.matchLabels must have at most 64 items"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || size(self.matchExpressions) > 32 || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="namespaceSelector.matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist"
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// ComponentSource names exactly one place to fetch an actor's WebAssembly
// module from.
//
// +kubebuilder:validation:XValidation:rule="[has(self.image), has(self.configMap), has(self.url), has(self.path)].exists_one(s, s)",message="exactly one component source must be set: image, configMap or url"
// +kubebuilder:validation:XValidation:rule="!has(self.path)",message="path is for `troupe run` only, the API server cannot read your files: use image, configMap or url",fieldPath=".path"
// +kubebuilder:validation:XValidation:rule="!has(self.url) || has(self.sha256)",message="sha256 is required with url: the SHA-256 of the module, 64 lowercase hex digits",fieldPath=".sha256"
// +kubebuilder:validation:XValidation:rule="!has(self.imagePullSecrets) || has(self.image)",message="imagePullSecrets needs an image source",fieldPath=".imagePullSecrets"
type ComponentSource struct {
	// image is an OCI artifact holding the module, by tag or by digest
	// (registry.example/actors/hello@sha256:...).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^\S+$`
	Image string `json:"image,omitempty"`

	// imagePullSecrets name Secrets of the actor's namespace holding
	// registry credentials for image.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	ImagePullSecrets []LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// configMap is a key of a ConfigMap in the actor's namespace whose
	// binaryData holds the module.
	// +optional
	ConfigMap *ComponentConfigMap `json:"configMap,omitempty"`

	// url is an https URL the module is downloaded from; sha256 is required
	// with it.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="url must be an absolute https:// URL"
	URL string `json:"url,omitempty"`

	// sha256 pins the module's SHA-256 (64 lowercase hex digits): a module
	// with another digest is refused. Optional with image and configMap.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-f]{64}$')",message="sha256 must be 64 lowercase hex digits"
	SHA256 string `json:"sha256,omitempty"`

	// path is a module file on the local machine, for `troupe run` only;
	// the API server rejects it.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Path string `json:"path,omitempty"`
}

// LocalObjectReference names an object in the actor's namespace.
type LocalObjectReference struct {
	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// ComponentConfigMap selects the ConfigMap key holding a module.
type ComponentConfigMap struct {
	// name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key of the module in the ConfigMap's binaryData. The module may be
	// stored gzip-compressed (a ConfigMap holds at most 1 MiB); a sha256 pin
	// is then the digest of the uncompressed module.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// ConfigMapKeySelector selects a key of a ConfigMap in the actor's namespace.
type ConfigMapKeySelector struct {
	// name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key within the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`

	// optional makes a missing ConfigMap or key mean "unset" instead of an
	// error.
	// +optional
	Optional *bool `json:"optional,omitempty"`
}

// SecretKeySelector selects a key of a Secret in the actor's namespace.
type SecretKeySelector struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key within the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`

	// optional makes a missing Secret or key mean "unset" instead of an
	// error.
	// +optional
	Optional *bool `json:"optional,omitempty"`
}

// HandlerType names a host interface an actor can import.
// +kubebuilder:validation:Enum=runtime
type HandlerType string

const (
	// HandlerRuntime is theater:simple/runtime: identity, time, env, logs,
	// metrics, events, system info and shutdown.
	HandlerRuntime HandlerType = "runtime"
)

// KnownHandlerTypes lists every handler type this version serves.
var KnownHandlerTypes = []HandlerType{HandlerRuntime}

// The rules on Handler below hold the runtime handler's config keys and
// ranges; RuntimeConfigKeys (handler_config.go) is the same table for Go,
// and the admission tests check the API server against it. The message
// names one unknown key, not all: a key's length has no bound the CRD can
// declare, and joining them would exceed the API server's cost budget for
// rules.

// Handler is one host interface given to the actor, with its settings.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'runtime' || !has(self.config) || self.config.all(k, k in ['maxLogBytes', 'maxEventTypeBytes', 'maxEventBytes', 'maxMetricNames'])",messageExpression="'unknown key ' + self.config.filter(k, !(k in ['maxLogBytes', 'maxEventTypeBytes', 'maxEventBytes', 'maxMetricNames']))[0] + ' in the runtime handler config: the known keys are maxLogBytes, maxEventTypeBytes, maxEventBytes and maxMetricNames'",fieldPath=".config"
// +kubebuilder:validation:XValidation:rule="self.type != 'runtime' || !has(self.config) || !('maxLogBytes' in self.config) || (self.config.maxLogBytes >= 1 && self.config.maxLogBytes <= 1048576)",message="maxLogBytes must be between 1 and 1048576",fieldPath=".config.maxLogBytes"
// +kubebuilder:validation:XValidation:rule="self.type != 'runtime' || !has(self.config) || !('maxEventTypeBytes' in self.config) || (self.config.maxEventTypeBytes >= 1 && self.config.maxEventTypeBytes <= 4096)",message="maxEventTypeBytes must be between 1 and 4096",fieldPath=".config.maxEventTypeBytes"
// +kubebuilder:validation:XValidation:rule="self.type != 'runtime' || !has(self.config) || !('maxEventBytes' in self.config) || (self.config.maxEventBytes >= 1 && self.config.maxEventBytes <= 8388608)",message="maxEventBytes must be between 1 and 8388608",fieldPath=".config.maxEventBytes"
// +kubebuilder:validation:XValidation:rule="self.type != 'runtime' || !has(self.config) || !('maxMetricNames' in self.config) || (self.config.maxMetricNames >= 1 && self.config.maxMetricNames <= 10000)",message="maxMetricNames must be between 1 and 10000",fieldPath=".config.maxMetricNames"
type Handler struct {
	// type of the handler. Known types: runtime.
	// +required
	Type HandlerType `json:"type"`

	// config is the handler's settings; {} (or none) for the defaults.
	// The runtime handler's keys, all integers:
	// maxLogBytes (1..1048576) bounds one log message in bytes;
	// maxEventTypeBytes (1..4096, default 256) bounds a record-event type;
	// maxEventBytes (1..8388608) bounds a record-event's or shutdown's data;
	// maxMetricNames (1..10000) caps the distinct metric names.
	// A key given here overrides the matching spec.limits value, larger or
	// smaller; a key left out takes spec.limits' value. Other keys are
	// rejected.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Config HandlerConfig `json:"config,omitempty"`
}

// HandlerConfig is a handler's settings by key; see Handler.config for the
// keys of each handler type.
type HandlerConfig map[string]HandlerConfigValue

// HandlerConfigValue is one setting as the API server stored it. The
// schema admits integers only, which is what lets the CRD's rules check
// the keys and ranges at admission; the Go type keeps any JSON, so that an
// Actor stored before those rules, with another value, still decodes (the
// manager and the hosts list every Actor at once: one they cannot decode
// would stop them all) and is reported InvalidSpec on its own.
//
// +kubebuilder:validation:Type=integer
type HandlerConfigValue struct {
	apiextensionsv1.JSON `json:",inline"`
}

// EnvVar declares one environment variable the actor may read.
//
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.valueFrom)",message="exactly one of value or valueFrom must be set"
type EnvVar struct {
	// name of the variable: letters, digits, '_', '-' and '.', not starting
	// with a digit.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z][-._a-zA-Z0-9]*$')",message="name must consist of letters, digits, '_', '-' or '.', and not start with a digit"
	Name string `json:"name"`

	// value is the variable's literal value (may be empty).
	// +optional
	// +kubebuilder:validation:MaxLength=1048576
	Value *string `json:"value,omitempty"`

	// valueFrom reads the value from a ConfigMap or Secret key; changes
	// reach a running actor without a restart. Values read from a Secret
	// are never written to the chain, a log or a status.
	// +optional
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource is where an environment variable's value comes from.
//
// +kubebuilder:validation:XValidation:rule="has(self.configMapKeyRef) != has(self.secretKeyRef)",message="exactly one of configMapKeyRef or secretKeyRef must be set"
type EnvVarSource struct {
	// configMapKeyRef selects a key of a ConfigMap.
	// +optional
	ConfigMapKeyRef *ConfigMapKeySelector `json:"configMapKeyRef,omitempty"`

	// secretKeyRef selects a key of a Secret.
	// +optional
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// EnvFromSource declares every key of a ConfigMap or a Secret as a variable.
//
// +kubebuilder:validation:XValidation:rule="has(self.configMapRef) != has(self.secretRef)",message="exactly one of configMapRef or secretRef must be set"
type EnvFromSource struct {
	// prefix is prepended to every key to form the variable's name.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z][-._a-zA-Z0-9]*$')",message="prefix must consist of letters, digits, '_', '-' or '.', and not start with a digit"
	Prefix string `json:"prefix,omitempty"`

	// configMapRef names the ConfigMap.
	// +optional
	ConfigMapRef *ConfigMapEnvSource `json:"configMapRef,omitempty"`

	// secretRef names the Secret.
	// +optional
	SecretRef *SecretEnvSource `json:"secretRef,omitempty"`
}

// ConfigMapEnvSource names a ConfigMap whose keys become variables.
type ConfigMapEnvSource struct {
	// name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// optional makes a missing ConfigMap declare nothing instead of an error.
	// +optional
	Optional *bool `json:"optional,omitempty"`
}

// SecretEnvSource names a Secret whose keys become variables.
type SecretEnvSource struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// optional makes a missing Secret declare nothing instead of an error.
	// +optional
	Optional *bool `json:"optional,omitempty"`
}

// Limits bound what one actor may use. A zero field means its default. A
// runtime handler config key of the same name (spec.handlers[].config)
// overrides the value here.
type Limits struct {
	// maxMemoryPages caps the actor's linear memory, in 64 KiB pages
	// (1024 = 64 MiB; at most 65536 = 4 GiB).
	// +optional
	// +kubebuilder:default=1024
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	MaxMemoryPages int32 `json:"maxMemoryPages,omitempty"`

	// callTimeout is the deadline of every call into the actor, from 1ms to
	// 10m; a call past it is interrupted and fails the actor.
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1ms') && duration(self) <= duration('10m'))",message="callTimeout must be between 1ms and 10m"
	CallTimeout *metav1.Duration `json:"callTimeout,omitempty"`

	// maxLogBytes caps the size of one log message, in bytes; the runtime
	// handler's config key of the same name overrides it.
	// +optional
	// +kubebuilder:default=16384
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1048576
	MaxLogBytes int32 `json:"maxLogBytes,omitempty"`

	// maxEventBytes caps the data of one record-event call, at most 8 MiB
	// (recorded as base64, it must fit one chain event); the runtime
	// handler's config key of the same name overrides it.
	// +optional
	// +kubebuilder:default=1048576
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=8388608
	MaxEventBytes int32 `json:"maxEventBytes,omitempty"`

	// maxMetricNames caps how many distinct metric names the actor may
	// record; the runtime handler's config key of the same name overrides
	// it.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxMetricNames int32 `json:"maxMetricNames,omitempty"`

	// maxChainBytes bounds the actor's state chain on its node, in bytes
	// (default 1 GiB, 1 MiB to 1 TiB). An append that would pass it fails
	// the actor (Ready reason ChainSizeLimit), and a chain that reached it
	// can't start again until it is raised.
	// +optional
	// +kubebuilder:default=1073741824
	// +kubebuilder:validation:Minimum=1048576
	// +kubebuilder:validation:Maximum=1099511627776
	MaxChainBytes int64 `json:"maxChainBytes,omitempty"`

	// chainBytesPerSecond is the rate at which the actor may append to its
	// chain and write its saved state, in bytes a second (default 1 MiB).
	// Past its burst a runtime call waits for it within the call's deadline;
	// one that would wait longer fails the actor (Ready reason
	// ChainRateLimit). A tick that wrote more than the rate allows delays
	// the next tick instead.
	// +optional
	// +kubebuilder:default=1048576
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1073741824
	ChainBytesPerSecond int32 `json:"chainBytesPerSecond,omitempty"`

	// chainBurstBytes is how many bytes an actor that was quiet may write at
	// once before chainBytesPerSecond applies (default 16 MiB). A single
	// larger write waits for a full burst and then delays what follows.
	// +optional
	// +kubebuilder:default=16777216
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1073741824
	ChainBurstBytes int32 `json:"chainBurstBytes,omitempty"`

	// chainEventsPerSecond is the rate of the actor's chain events (default
	// 1000), throttled as chainBytesPerSecond is.
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	ChainEventsPerSecond int32 `json:"chainEventsPerSecond,omitempty"`

	// chainBurstEvents is how many events an actor that was quiet may
	// append at once (default 10000).
	// +optional
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000
	ChainBurstEvents int32 `json:"chainBurstEvents,omitempty"`

	// mailboxMessages bounds the messages and requests waiting for the
	// actor (default 1024); a send to a full mailbox is refused at once
	// with "mailbox full".
	// +optional
	// +kubebuilder:default=1024
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1048576
	MailboxMessages int32 `json:"mailboxMessages,omitempty"`

	// mailboxBytes bounds the bytes of the messages waiting for the actor
	// (default 16 MiB).
	// +optional
	// +kubebuilder:default=16777216
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1073741824
	MailboxBytes int32 `json:"mailboxBytes,omitempty"`

	// maxMessageBytes bounds a message the actor sends or is sent, and a
	// response (default 1 MiB, at most 8 MiB).
	// +optional
	// +kubebuilder:default=1048576
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=8388608
	MaxMessageBytes int32 `json:"maxMessageBytes,omitempty"`

	// requestTimeout caps how long a request the actor makes waits for
	// its response (its call's own deadline may be shorter), and how long
	// an outside caller's request to it waits; from 1ms to 10m.
	// +optional
	// +kubebuilder:default="2s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1ms') && duration(self) <= duration('10m'))",message="requestTimeout must be between 1ms and 10m"
	RequestTimeout *metav1.Duration `json:"requestTimeout,omitempty"`
}

// RestartPolicy says when a stopped actor is started again.
// +kubebuilder:validation:Enum=Always;OnFailure;Never
type RestartPolicy string

const (
	// RestartAlways restarts the actor whenever it stops, also after shutdown.
	RestartAlways RestartPolicy = "Always"
	// RestartOnFailure restarts the actor after a trap, a timeout or an init
	// error, with backoff; not after it called shutdown.
	RestartOnFailure RestartPolicy = "OnFailure"
	// RestartNever leaves a stopped actor stopped.
	RestartNever RestartPolicy = "Never"
)

// RestorePolicy says where an actor that moved starts from when the
// archive is behind the head in its status.
// +kubebuilder:validation:Enum=FromArchive;WaitForNode
type RestorePolicy string

const (
	// RestoreFromArchive starts from the archive's head, naming the gap.
	RestoreFromArchive RestorePolicy = "FromArchive"
	// RestoreWaitForNode waits for the old node to upload the missing
	// events.
	RestoreWaitForNode RestorePolicy = "WaitForNode"
)

// ActorStatus is what the controller and the actor's host last observed.
type ActorStatus struct {
	// actorID is the actor's stable identity (a UUID), returned by
	// get-actor-id; it survives restarts and moves.
	// +optional
	ActorID string `json:"actorID,omitempty"`

	// phase summarises where the actor is in its life.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// conditions are the latest observations: Scheduled and Ready, and
	// StateLost once the actor moved to a node without its saved state.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// nodeName is the node whose host the actor is assigned to.
	// +optional
	NodeName string `json:"nodeName,omitempty"`

	// hostPod is the name of the host pod the actor is assigned to (host pods
	// run in the operator's namespace).
	// +optional
	HostPod string `json:"hostPod,omitempty"`

	// epoch numbers the actor's assignments; it grows by one with every new
	// assignment, and a host only runs and reports an actor while the
	// current assignment names it with its epoch.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Epoch int64 `json:"epoch,omitempty"`

	// chain is the head of the actor's state chain.
	// +optional
	Chain *ChainStatus `json:"chain,omitempty"`

	// restarts counts how often the manager restarted the actor after its
	// run ended.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Restarts int32 `json:"restarts,omitempty"`

	// lastError is the message of the actor's last failure (trap, timeout,
	// init or component error), written by its host; the host clears it
	// once the actor runs again.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	LastError string `json:"lastError,omitempty"`

	// lastRestartTime is when the manager last restarted the actor.
	// +optional
	LastRestartTime *metav1.Time `json:"lastRestartTime,omitempty"`

	// nextRestartTime is when the manager restarts an actor whose run ended
	// and whose restartPolicy restarts it: the end of its backoff (Ready
	// is False, reason BackOff, meanwhile). Unset otherwise.
	// +optional
	NextRestartTime *metav1.Time `json:"nextRestartTime,omitempty"`

	// suspendRequestTime is when the manager saw spec.suspend on an actor
	// its host was running and began to wait for the host to stop it and
	// publish its final chain head (Scheduled is False, reason Suspending,
	// meanwhile); after the manager's flush timeout it stops waiting.
	// Unset otherwise.
	// +optional
	SuspendRequestTime *metav1.Time `json:"suspendRequestTime,omitempty"`
}

// ChainStatus is the head of an actor's state chain, published by its host.
type ChainStatus struct {
	// head is the hash of the chain's last event, 64 lowercase hex digits.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9a-f]{64})?$`
	Head string `json:"head,omitempty"`

	// headShort is head's first 12 hex digits, for kubectl's Head column.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9a-f]{12})?$`
	HeadShort string `json:"headShort,omitempty"`

	// length is the number of events in the chain.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Length int64 `json:"length,omitempty"`

	// updatedAt is when the host published this head.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`

	// node is the node whose chain file holds this head (and the state
	// saved with it): where the actor's history and state stay when it
	// moves to another node.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`
}

// Phase summarises where an actor is in its life.
// +kubebuilder:validation:Enum=Pending;Scheduled;Running;Succeeded;Failed;Suspended
type Phase string

// +kubebuilder:object:root=true

// ActorList is a list of Actors.
type ActorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Actors.
	Items []Actor `json:"items"`
}
