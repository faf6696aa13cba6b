//go:build darwin || freebsd

package actorhost

// residentBytes reports b's length: without mincore here, every committed
// byte counts as resident.
func residentBytes(b []byte) uint64 { return uint64(len(b)) }

// codeMappedBytes: the mappings are not read here; the engine estimates
// the compiled code from the modules' sizes.
func codeMappedBytes() (uint64, bool) { return 0, false }
