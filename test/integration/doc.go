// Package integration is Troupe's end-to-end suite: the manager's Actor
// reconciler and real node hosts, in-process, against a real kube-apiserver
// and etcd, running real actors from apply to deletion.
//
// `go test ./test/integration` runs the functional tests (make test does);
// the measurements of scale (Ready latency of 100 and 1,000 actors, API
// requests at steady state) run only with -integration.scale or
// TROUPE_SCALE=1.
package integration
