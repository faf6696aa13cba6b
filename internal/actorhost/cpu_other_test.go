//go:build !unix

package actorhost

import (
	"testing"
	"time"
)

// processCPU is not measured here: the benchmarks leave out their CPU
// figures.
func processCPU(testing.TB) time.Duration { return 0 }
