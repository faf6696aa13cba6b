//go:build !(linux || darwin || freebsd)

package diskbudget

import "errors"

// StatFS is not available on this platform: the watermark stays off and
// Watch reports the error.
func StatFS(string) (Space, error) {
	return Space{}, errors.New("reading free space is not supported on this platform")
}
