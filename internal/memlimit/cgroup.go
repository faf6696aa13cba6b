package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// unlimitedV1 is what cgroup v1 reports for "no limit": the largest
// page-aligned int64 (9223372036854771712), or anything close to it.
const unlimitedV1 = 1 << 62

// Source says where a limit was read.
type Source struct {
	// File is the file the limit came from, "" when none was found.
	File string
	// Version is the cgroup version, 1 or 2; 0 when none was found.
	Version int
}

// CgroupLimit returns the memory limit of the cgroup this process runs in,
// in bytes, and where it read it; 0 when the cgroup sets none (or there is
// no cgroup file to read). root is the filesystem root ("/" in production,
// a test directory otherwise).
//
// cgroup v2 (/proc/self/cgroup has a "0::<path>" line): memory.max of the
// process's cgroup and of each ancestor up to the mount, the smallest that
// is set ("max" is none). cgroup v1 ("N:memory:<path>", or
// "N:...,memory,...:<path>"): memory.limit_in_bytes likewise. Inside a
// container the path /proc/self/cgroup names is often not under the mount
// (the container sees its own cgroup as the mount's root): the walk up
// reaches the mount's own file, which is then the container's limit.
func CgroupLimit(root string) (uint64, Source, error) {
	data, err := os.ReadFile(path.Join(root, "proc/self/cgroup"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, Source{}, nil
	}
	if err != nil {
		return 0, Source{}, fmt.Errorf("reading the process's cgroups: %w", err)
	}
	v1Path, v2Path, hasV1, hasV2 := parseProcCgroup(data)
	if hasV2 {
		mount := path.Join(root, "sys/fs/cgroup")
		// A hybrid host mounts v2 at /sys/fs/cgroup/unified, with the v1
		// controllers beside it; memory is then a v1 controller.
		if _, err := os.Stat(path.Join(mount, "cgroup.controllers")); err == nil {
			n, file, err := smallestUp(mount, v2Path, "memory.max")
			if err != nil || file != "" || !hasV1 {
				return n, Source{File: file, Version: 2}, err
			}
		}
	}
	if hasV1 {
		n, file, err := smallestUp(path.Join(root, "sys/fs/cgroup/memory"), v1Path, "memory.limit_in_bytes")
		return n, Source{File: file, Version: 1}, err
	}
	return 0, Source{}, nil
}

// parseProcCgroup reads /proc/self/cgroup: the memory controller's path in
// cgroup v1, and the unified (v2) path.
func parseProcCgroup(data []byte) (v1, v2 string, hasV1, hasV2 bool) {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		id, rest, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if id == "0" && controllers == "" {
			v2, hasV2 = p, true
			continue
		}
		for _, c := range strings.Split(controllers, ",") {
			if c == "memory" {
				v1, hasV1 = p, true
			}
		}
	}
	return v1, v2, hasV1, hasV2
}

// smallestUp reads file in mount/p and each of its ancestors up to mount
// itself, and returns the smallest limit set and the file it came from.
// A directory that does not exist is skipped: inside a container the
// process's path is often not under the mount at all.
func smallestUp(mount, p, file string) (uint64, string, error) {
	var best uint64
	bestFile := ""
	dir := path.Clean("/" + p)
	for {
		f := path.Join(mount, dir, file)
		n, set, err := readLimit(f)
		if err != nil {
			return 0, "", err
		}
		if set && (bestFile == "" || n < best) {
			best, bestFile = n, f
		}
		if dir == "/" {
			return best, bestFile, nil
		}
		dir = path.Dir(dir)
	}
}

// readLimit reads one limit file: a number of bytes, or "max" (v2) or a
// number near 2^63 (v1) for none. A missing file is no limit.
func readLimit(file string) (uint64, bool, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading %s: %w", file, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "max" || v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("reading %s: %q is no number of bytes", file, v)
	}
	if n >= unlimitedV1 {
		return 0, false, nil
	}
	return n, true, nil
}
