package controllers

// The manager keeps the peer CA and the peers' certificates in Secrets of
// its own namespace (internal/peerca.Rotator, wired in cmd/manager): a
// Role there, never a ClusterRole. It reads them from the API server, not
// through a cache: it lists and watches no Secret. The Secrets belong to
// the manager's Deployment (an owner reference, read with get), so that
// uninstalling deletes them.
//
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update,namespace=system
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get,namespace=system
