package runtimehandler

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

// EnvValue is the value of a declared variable.
type EnvValue struct {
	Value string
	// Secret marks a value from a secret source (a Kubernetes Secret, or
	// in local mode a value given for a secretKeyRef): the chain records
	// only that it was redacted, and it is scrubbed from everything the
	// actor hands the host.
	Secret bool
}

// EnvSource serves the variables an actor's manifest declares, and nothing
// else: never the host's own environment. Implementations must be safe for
// concurrent use; the operator's implementation follows ConfigMaps and
// Secrets, so a value may change between two calls.
type EnvSource interface {
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

// ParseEnvAssignments turns NAME=VALUE strings (the --env flags of
// `troupe run`) into a MapEnv. A later assignment to the same name wins, as
// in a shell. Whether a value is secret is the actor's declaration's to
// say: mark it in the result.
func ParseEnvAssignments(assignments []string) (MapEnv, error) {
	m := MapEnv{}
	for _, kv := range assignments {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("env assignment %q: want NAME=VALUE", kv)
		}
		if err := ValidateEnvName(name); err != nil {
			return nil, fmt.Errorf("env assignment %q: %w", kv, err)
		}
		m[name] = EnvValue{Value: value}
	}
	return m, nil
}

// ReadEnvFile reads a file of NAME=VALUE lines (the --env-file flag): blank
// lines and lines starting with '#' are skipped, an optional "export "
// prefix is dropped, and a value wrapped in one pair of matching single or
// double quotes loses them; nothing else is interpreted (no escapes, no
// variable expansion). Like ParseEnvAssignments, it marks nothing secret.
func ReadEnvFile(path string) (MapEnv, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	defer f.Close()
	m := MapEnv{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		text = strings.TrimPrefix(text, "export ")
		name, value, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("env file %s:%d: want NAME=VALUE", path, line)
		}
		name = strings.TrimSpace(name)
		if err := ValidateEnvName(name); err != nil {
			return nil, fmt.Errorf("env file %s:%d: %w", path, line, err)
		}
		if n := len(value); n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n-1] == value[0] {
			value = value[1 : n-1]
		}
		m[name] = EnvValue{Value: value}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading env file %s: %w", path, err)
	}
	return m, nil
}

// MergeEnv returns one MapEnv holding every variable of the given maps; a
// later map wins on a name both declare.
func MergeEnv(maps ...MapEnv) MapEnv {
	out := MapEnv{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
