//go:build linux || darwin || freebsd || netbsd || openbsd

package chain

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockExclusive takes the writer's advisory lock on the chain file. The
// kernel drops it when the process dies, so a crashed writer never leaves a
// stale lock behind.
func lockExclusive(f *os.File) error {
	return flock(f, syscall.LOCK_EX|syscall.LOCK_NB, ErrLocked)
}

// writerActive reports whether some process holds the writer's lock, which
// tells a reader that an incomplete last record is still being written.
func writerActive(f *os.File) bool {
	if err := flock(f, syscall.LOCK_SH|syscall.LOCK_NB, ErrLocked); err != nil {
		return errors.Is(err, ErrLocked)
	}
	_ = flock(f, syscall.LOCK_UN, nil)
	return false
}

func flock(f *os.File, how int, busy error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if ferr == syscall.EWOULDBLOCK && busy != nil {
		return busy
	}
	if ferr != nil {
		return fmt.Errorf("flock: %w", ferr)
	}
	return nil
}
