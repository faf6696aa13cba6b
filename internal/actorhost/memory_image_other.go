//go:build !linux

package actorhost

// shareImage: no memfd here; instances copy the image.
func shareImage(b []byte, name string) (fd int, src []byte, unmap func(), ok bool) {
	return -1, nil, nil, false
}

// mapImage is never called without a shared image.
func mapImage(fd int, buf []byte) bool { return false }

// canCountImageWrites: never a mapped image here.
func canCountImageWrites() bool { return false }

// mappedResident: never a mapped image here.
func mappedResident(b []byte) (resident, shared uint64, ok bool) { return 0, 0, false }
