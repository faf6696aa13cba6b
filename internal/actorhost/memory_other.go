//go:build !(linux || darwin || freebsd)

package actorhost

func allocateLinearMemory(limit, capBytes uint64, lim *memoryLimiter) *linearMemory {
	return newHeapMemory(limit, capBytes, lim)
}
