// Package kubescheme builds the one runtime.Scheme that the manager, the
// host and the envtest suites decode API objects with: client-go's
// built-in kinds and theater.troupe.dev/v1alpha1. It is its own package so
// that the binaries and internal/envtestutil can share it without the API
// types pulling client-go's kinds into every importer (the troupe CLI).
package kubescheme
