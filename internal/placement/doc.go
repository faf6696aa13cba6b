// Package placement decides which live host pod an actor goes to: hosts
// from their Leases and Nodes, filtered by protocol version, the
// namespaces they serve, nodeSelector, taints and capacity, least loaded
// first; pure functions, no API calls.
package placement
