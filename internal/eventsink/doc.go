// Package eventsink records Kubernetes Events (events.k8s.io/v1) through a
// client of their own with its own rate limit. client-go sends each Event
// from a goroutine of its own as soon as it is recorded, so a burst of
// actors (each with a Placed and a Started Event) would otherwise put as
// many Event writes on the API server, at once, as the writes that make
// the actors Ready; through the sink they queue on the client and follow
// at a steady rate. Every Event is still written.
package eventsink
