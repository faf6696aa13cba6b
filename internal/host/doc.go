// Package host is the Kubernetes side of a node's host pod: it renews the
// host's Lease, watches the Actors assigned to it, runs them with the
// engine (component fetched and cached, env from ConfigMaps and Secrets,
// chain and state on the node), publishes their status at a bounded rate,
// and serves /metrics, /healthz, /readyz and the actors' chains over HTTP.
package host
