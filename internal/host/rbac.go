package host

// The host's rights, least privilege (config/rbac/host is generated from
// these markers by `make manifests`):
//   - its own Actors: read them, write their status, never their spec or
//     metadata (no update, patch or delete on actors);
//   - the ConfigMaps and Secrets its actors' env and components reference,
//     in the actors' namespaces: read and watch (one object at a time, by
//     the field selector metadata.name; RBAC cannot narrow a cluster-wide
//     grant to the referenced names);
//   - Events about its actors;
//   - its Lease, in its own namespace only.
//
// +kubebuilder:rbac:groups=theater.troupe.dev,resources=actors,verbs=get;list;watch
// +kubebuilder:rbac:groups=theater.troupe.dev,resources=actors/status,verbs=get;update
// +kubebuilder:rbac:groups="",resources=configmaps;secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update;delete,namespace=system
