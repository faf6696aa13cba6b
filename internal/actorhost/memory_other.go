//go:build !(linux || darwin || freebsd)

package actorhost

func allocateLinearMemory(limit, capBytes uint64, lim *memoryLimiter) *linearMemory {
	return newHeapMemory(limit, capBytes, lim)
}

// codeMappedBytes: the mappings are not read here; the engine estimates
// the compiled code from the modules' sizes.
func codeMappedBytes() (uint64, bool) { return 0, false }
