package actorhost

import (
	"encoding/binary"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// shareImage puts b in a sealed memfd (its size and contents can't change
// any more) and returns the fd, a read-only shared mapping of it to copy
// from, and what releases both. The heap copy b is then garbage.
func shareImage(b []byte, name string) (fd int, src []byte, unmap func(), ok bool) {
	if len(b) == 0 {
		return -1, nil, nil, false
	}
	fd, err := unix.MemfdCreate("troupe-image-"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, nil, nil, false
	}
	fail := func() (int, []byte, func(), bool) {
		_ = unix.Close(fd)
		return -1, nil, nil, false
	}
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if err != nil || n <= 0 {
			return fail()
		}
		off += n
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return fail()
	}
	src, err = unix.Mmap(fd, 0, len(b), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fail()
	}
	return fd, src, func() {
		_ = unix.Munmap(src)
		_ = unix.Close(fd)
	}, true
}

// mapImage maps the memfd privately over buf (the start of a linear
// memory's PROT_NONE reservation), inaccessible until the backing commits
// it: a page read is the shared one, a page written is copied.
func mapImage(fd int, buf []byte) bool {
	_, err := unix.MmapPtr(fd, 0, unsafe.Pointer(unsafe.SliceData(buf)), uintptr(len(buf)),
		unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	return err == nil
}

// pagemap is /proc/self/pagemap, opened once; nil when it can't be.
var pagemap = sync.OnceValue(func() *os.File {
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil
	}
	return f
})

// canCountImageWrites says whether mappedResident can tell the pages an
// instance copied from its image.
func canCountImageWrites() bool { return pagemap() != nil }

// mappedResident counts the pages of b, a private mapping of a file, that
// this process has in its page tables (what RSS counts for it), and of
// those the ones still the file's (shared, not yet copied on write). The
// page cache holds the whole image whatever this mapping touched, so
// mincore would count every page; /proc/self/pagemap tells the mapping's
// own: bit 63 present, bit 61 a file page. ok is false when pagemap can't
// be read.
func mappedResident(b []byte) (resident, shared uint64, ok bool) {
	f := pagemap()
	if f == nil || len(b) == 0 {
		return 0, 0, false
	}
	pageSize := uint64(unix.Getpagesize())
	first := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) / pageSize
	pages := (uint64(len(b)) + pageSize - 1) / pageSize
	var entries [512]byte // 64 pages a read
	for done := uint64(0); done < pages; {
		n := min(pages-done, uint64(len(entries)/8))
		got, err := f.ReadAt(entries[:n*8], int64((first+done)*8))
		if err != nil || uint64(got) != n*8 {
			return 0, 0, false
		}
		for i := uint64(0); i < n; i++ {
			e := binary.NativeEndian.Uint64(entries[i*8:])
			if e&(1<<63) == 0 {
				continue
			}
			resident += pageSize
			if e&(1<<61) != 0 {
				shared += pageSize
			}
		}
		done += n
	}
	return resident, shared, true
}
