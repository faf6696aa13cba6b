package runtimehandler

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// EnvValue is the value of a declared variable.
type EnvValue struct {
	Value string
	// Secret marks a value from a secret source (a Kubernetes Secret, or
	// what `troupe run` is given for a variable its Actor YAML reads from
	// one): the chain records only that it was redacted.
	Secret bool
}

// EnvSource serves the variables an actor's manifest declares, and nothing
// else: never the host's own environment. Implementations must be safe for
// concurrent use; the operator's implementation follows ConfigMaps and
// Secrets, so a value may change between two calls.
type EnvSource interface {
	LookupEnv(name string) (EnvValue, bool)
}

// MapEnv is a fixed EnvSource, used in local mode (flags and files).
type MapEnv map[string]EnvValue

// LookupEnv implements EnvSource.
func (m MapEnv) LookupEnv(name string) (EnvValue, bool) {
	v, ok := m[name]
	return v, ok
}

// ValidateEnvName checks a variable name the way a Pod's env does loosely:
// non-empty, valid UTF-8, no '=' and no NUL. It is deliberately permissive
// about characters (Kubernetes allows any printable name since 1.30).
func ValidateEnvName(name string) error {
	switch {
	case name == "":
		return errors.New("env name is empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("env name %q is not valid UTF-8", name)
	case strings.ContainsAny(name, "=\x00"):
		return fmt.Errorf("env name %q contains '=' or NUL, which names may not", name)
	}
	return nil
}
