// Package envtestutil starts a real kube-apiserver and etcd with Troupe's
// CRDs installed, for envtest suites of the API, the controllers and the host.
//
// The binaries come from KUBEBUILDER_ASSETS (make test sets it) or else from
// hack/setup-envtest.sh, which builds them once from source. Environment:
// TROUPE_TEST_LOG=1 prints controller-runtime's logs, TROUPE_ENVTEST_OUTPUT=1
// the control plane's own output (to see why a start is slow or fails).
package envtestutil
