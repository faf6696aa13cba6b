package wasmcheck

import (
	"errors"
	"fmt"
)

// Error is why Check refused a module: a bound it exceeds (Limit names it)
// or bytes it cannot read (Limit is "").
type Error struct {
	// Limit is the name of the Limits field exceeded, "" for a malformed
	// module.
	Limit string
	// Got and Max are the module's figure and the bound (0 when malformed).
	Got, Max uint64
	// Offset is where in the module the problem is.
	Offset int
	msg    string
}

func (e *Error) Error() string { return e.msg }

// IsLimit reports whether err is a bound the module exceeds (as opposed to a
// malformed module).
func IsLimit(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Limit != ""
}

// tooMany is the error of a figure above its bound: what is a format with
// one %d for the figure ("function 17's br_table has %d targets"), and the
// message adds the bound.
func tooMany(limit string, got, max uint64, off int, what string) *Error {
	return &Error{Limit: limit, Got: got, Max: max, Offset: off,
		msg: fmt.Sprintf(what, got) + fmt.Sprintf(", more than the %d allowed", max)}
}

func malformed(off int, format string, args ...any) *Error {
	return &Error{Offset: off, msg: fmt.Sprintf("malformed module at byte %d: %s", off, fmt.Sprintf(format, args...))}
}
