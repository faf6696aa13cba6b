package runtimehandler

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// EnvValue is the value of a declared variable.
type EnvValue struct {
	Value string
	// Secret marks a value from a secret source (a Kubernetes Secret, or
	// what `troupe run` is given for a variable its Actor YAML reads from
	// one): the chain records only that it was redacted, and it is
	// scrubbed from everything the actor hands the host.
	Secret bool
}

// EnvSource serves the variables an actor's manifest declares, and nothing
// else: never the host's own environment. Implementations must be safe for
// concurrent use; the operator's implementation follows ConfigMaps and
// Secrets, so a value may change between two calls.
type EnvSource interface {
	// LookupEnv returns the variable name. The name may be a view of the
	// guest's memory, valid only during the call: an implementation that
	// keeps it must copy it (strings.Clone).
	LookupEnv(name string) (EnvValue, bool)
	// SecretValues returns every secret value the source knows for the
	// actor: those of its secret variables now, and those they had before
	// as far as the source remembers. NewActor scrubs them all from the
	// start, so a secret an earlier run kept in the saved state is
	// scrubbed even when the guest logs it before reading it again.
	SecretValues() []string
}

// MapEnv is a fixed EnvSource, used in local mode (flags and files): mark
// a value Secret (EnvValue.Secret) when the actor declares it from a
// Secret.
type MapEnv map[string]EnvValue

// LookupEnv implements EnvSource.
func (m MapEnv) LookupEnv(name string) (EnvValue, bool) {
	v, ok := m[name]
	return v, ok
}

// SecretValues implements EnvSource: the values marked Secret, in the
// order of their names.
func (m MapEnv) SecretValues() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if v := m[name]; v.Secret {
			out = append(out, v.Value)
		}
	}
	return out
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
