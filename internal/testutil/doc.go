// Package testutil helps tests across Troupe use its guest actors: it builds
// the Go examples as wasip1 reactors, loads the hand-written test actors,
// checks a module against the guest ABI of theater:simple, and runs actors
// under a small fake of the runtime handler.
package testutil
