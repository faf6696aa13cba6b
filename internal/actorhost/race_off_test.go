//go:build !race

package actorhost

const raceEnabled = false
