// Package component fetches an actor's WebAssembly module from where its
// Actor says (an OCI artifact, a ConfigMap's binaryData or an https URL
// pinned by SHA-256) and keeps it in a digest-addressed cache on the node.
package component
