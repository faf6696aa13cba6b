//go:build race

package actorhost

// raceEnabled: the race detector keeps shadow memory for the heap that it
// never returns, so RSS figures mean nothing under it.
const raceEnabled = true
