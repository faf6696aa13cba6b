// Package limits holds the defaults and bounds of an actor's limits that the
// API (api/v1alpha1 and its CRD markers), the engine (internal/actorhost and
// internal/runtimehandler) and the CLI must agree on: linear memory, the call
// deadline, the tick interval, the runtime handler's size limits and the
// largest state. Each number is written here once; the API's constants alias
// these, and a test holds the CRD's markers to them.
package limits
