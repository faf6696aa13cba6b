package actorhost

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentBytes counts the pages of b that are in RAM (mincore(2)).
func residentBytes(b []byte) uint64 {
	pageSize := uint64(unix.Getpagesize())
	vec := make([]byte, (uint64(len(b))+pageSize-1)/pageSize)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if errno != 0 {
		return uint64(len(b))
	}
	var n uint64
	for _, v := range vec {
		if v&1 != 0 {
			n += pageSize
		}
	}
	return n
}
