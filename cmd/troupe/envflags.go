package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// parseEnvAssignments turns NAME=VALUE strings (the --env flags) into a
// MapEnv. A later assignment to the same name wins, as in a shell. Which
// values are secret is for the Actor YAML to say (resolveEnv), not for
// the flag.
func parseEnvAssignments(assignments []string) (runtimehandler.MapEnv, error) {
	m := runtimehandler.MapEnv{}
	for _, kv := range assignments {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("env assignment %q: want NAME=VALUE", kv)
		}
		if err := runtimehandler.ValidateEnvName(name); err != nil {
			return nil, fmt.Errorf("env assignment %q: %w", kv, err)
		}
		m[name] = runtimehandler.EnvValue{Value: value}
	}
	return m, nil
}

// readEnvFile reads a file of NAME=VALUE lines (the --env-file flag): blank
// lines and lines starting with '#' are skipped, an optional "export "
// prefix is dropped, and a value wrapped in one pair of matching single or
// double quotes loses them; nothing else is interpreted (no escapes, no
// variable expansion).
func readEnvFile(path string) (runtimehandler.MapEnv, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	defer f.Close()
	m := runtimehandler.MapEnv{}
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
		if err := runtimehandler.ValidateEnvName(name); err != nil {
			return nil, fmt.Errorf("env file %s:%d: %w", path, line, err)
		}
		if n := len(value); n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n-1] == value[0] {
			value = value[1 : n-1]
		}
		m[name] = runtimehandler.EnvValue{Value: value}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading env file %s: %w", path, err)
	}
	return m, nil
}
