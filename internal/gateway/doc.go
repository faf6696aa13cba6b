// Package gateway is Troupe's entry point from outside the cluster: an
// aggregated API (APIService v1alpha1.gateway.troupe.dev) that the
// Kubernetes API server proxies to, carrying the caller's identity in the
// front-proxy headers. The gateway trusts those headers only on a client
// certificate that chains to the requestheader client CA of
// kube-system/extension-apiserver-authentication (Authenticator), asks
// the API server whether that identity may send or request to the Actor
// (Authorizer, a cached SubjectAccessReview), and only then hands the
// message to a Deliverer, recording the caller as the message's external
// sender. Refusals answer the message protocol's JSON error body and are
// never delivered.
package gateway
