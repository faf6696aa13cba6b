// Package peerca makes the peer CA of Troupe's host-to-host transport and
// the leaf certificates it signs (ECDSA P-256, crypto/x509 only): the
// manager keeps them in Secrets and rotates them (Rotator), the hosts and
// the gateway mount their leaf's Secret.
package peerca
