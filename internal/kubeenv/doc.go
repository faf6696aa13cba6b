// Package kubeenv serves an actor's declared environment (env and envFrom)
// from the ConfigMaps and Secrets of its namespace, following their changes
// with one shared, ref-counted watch per referenced object, so the host's
// memory grows with what its actors reference, not with the cluster.
package kubeenv
