package kubeenv

// What a host needs to read in a namespace whose Actors it runs: the
// ConfigMaps and Secrets their env references, and the ConfigMaps their
// components come from and the image pull Secrets they name
// (internal/component reads those through the host's client). Read and watch one object at a time (the field selector
// metadata.name; RBAC can't narrow a grant to the names an Actor happens
// to reference).
//
// `make manifests` generates the role troupe-host-env
// (config/rbac/host-env) from this marker. The chart grants it in each
// namespace of host.actorNamespaces (a Role and a RoleBinding there), or
// cluster-wide when that list is empty; kustomize's config/default grants
// it cluster-wide.
//
// +kubebuilder:rbac:groups="",resources=configmaps;secrets,verbs=get;list;watch
