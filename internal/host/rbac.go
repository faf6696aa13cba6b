package host

// The host's rights, least privilege (config/rbac/host is generated from
// these markers by `make manifests`):
//   - its own Actors: read them, write their status, never their spec or
//     metadata (no update, patch or delete on actors). Cluster-wide, even
//     when the host runs the Actors of a few namespaces only: it must see
//     an Actor assigned to it in any namespace to refuse it with a
//     condition (NamespaceNotServed). Actors hold no secret by contract:
//     Secrets are referenced by name and read under the rights below;
//   - Events about its actors, cluster-wide for the same reason;
//   - its Lease, in its own namespace only; and list/watch of the host
//     Leases there, for the peer endpoints of the other hosts (routing
//     messages, internal/msgroute). Routing reads Actors with the
//     cluster-wide list/watch above.
//
// What the actors' env and components read, ConfigMaps and Secrets, is
// granted apart (the role troupe-host-env, from the markers in
// internal/kubeenv), in each namespace whose Actors the host runs, or
// cluster-wide when the install lists none.
//
// +kubebuilder:rbac:groups=theater.troupe.dev,resources=actors,verbs=get;list;watch
// +kubebuilder:rbac:groups=theater.troupe.dev,resources=actors/status,verbs=get;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;delete,namespace=system
