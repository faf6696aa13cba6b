// Package e2e is Troupe's end-to-end suite: it runs against whatever cluster
// KUBECONFIG names (make test-e2e-local, hack/e2e-kind.sh) with the image that
// TROUPE_E2E_IMAGE names already loaded on its nodes; build with -tags e2e.
package e2e
