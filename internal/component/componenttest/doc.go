// Package componenttest serves modules for tests of what fetches them (the
// component package, the host): an in-process OCI registry, optionally
// behind basic auth, and wasm artifacts to push to it.
package componenttest
