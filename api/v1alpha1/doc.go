// Package v1alpha1 defines the Actor resource (theater.troupe.dev/v1alpha1):
// the manifest of one WebAssembly actor and the status its host reports.
//
// The CRD generated from these types (config/crd/bases) validates specs at
// admission with OpenAPI and CEL rules; Validate mirrors them for the local
// runner, which reads Actor YAML without an API server.
//
// +kubebuilder:object:generate=true
// +groupName=theater.troupe.dev
package v1alpha1
