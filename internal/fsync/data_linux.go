package fsync

import (
	"os"
	"syscall"
)

// Data makes f's data durable. It skips the inode timestamps fsync would
// also write; the file's size, which appends change, is still made durable.
func Data(f *os.File) error {
	rc, err := dataOf(f).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
