// Package theater reads and verifies state chains exported by Theater as a
// JSON array of SHA-1-linked events, so users moving to Troupe can check and
// inspect the chains they bring.
package theater
