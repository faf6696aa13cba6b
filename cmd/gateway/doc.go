// Command gateway is Troupe's entry point from outside: the aggregated API
// gateway.troupe.dev/v1alpha1 behind the Kubernetes API server. It takes
// the caller's identity from the front proxy's headers, checks verb
// request or send on the Actor with a SubjectAccessReview, and delivers
// the message to the Actor's host (docs/install.md#calling-an-actor).
package main
