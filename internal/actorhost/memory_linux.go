package actorhost

import (
	"bytes"
	"os"
	"strconv"
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

// codeMappedBytes sums the process's anonymous executable mappings, which
// are wazero's compiled code (the Go runtime maps none: its code is the
// binary's, a file mapping). /proc/self/maps lines are
// "start-end perms offset dev inode [path]"; anonymous ones have no path.
func codeMappedBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, false
	}
	var total uint64
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		f := bytes.Fields(line)
		if len(f) != 5 || len(f[1]) < 3 || f[1][2] != 'x' {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end < start {
			continue
		}
		total += end - start
	}
	return total, true
}
