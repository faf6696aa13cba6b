// Package envtestutil starts a real kube-apiserver and etcd with Troupe's
// CRDs installed, for envtest suites of the API, the controllers and the host.
package envtestutil
