package runtimehandler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/troupe-dev/troupe/internal/limits"
)

// Config holds the runtime handler's limits: the optional keys of the
// runtime handler's config in an Actor's spec. docs/runtime-handler.md
// documents each key; internal/limits holds their defaults and bounds.
type Config struct {
	// MaxLogBytes bounds a log message (bytes of UTF-8).
	MaxLogBytes int `json:"maxLogBytes"`
	// MaxEventTypeBytes bounds a record-event type.
	MaxEventTypeBytes int `json:"maxEventTypeBytes"`
	// MaxEventBytes bounds a record-event's data and shutdown's data.
	MaxEventBytes int `json:"maxEventBytes"`
	// MaxMetricNames caps the distinct metric names one actor may record.
	MaxMetricNames int `json:"maxMetricNames"`
}

// DefaultConfig returns the limits that `config = {}` means.
func DefaultConfig() Config {
	return Config{
		MaxLogBytes:       limits.DefaultMaxLogBytes,
		MaxEventTypeBytes: limits.DefaultMaxEventTypeBytes,
		MaxEventBytes:     limits.DefaultMaxEventBytes,
		MaxMetricNames:    limits.DefaultMaxMetricNames,
	}
}

// ParseConfig parses the handler's config, a JSON object (the manifest's
// TOML table or the Actor's YAML, converted). Empty input, null and {} mean
// DefaultConfig; a key that is present overrides its default. Unknown keys,
// non-integers and out-of-range values are errors that name the key and the
// allowed range.
func ParseConfig(raw []byte) (Config, error) {
	cfg := DefaultConfig()
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return cfg, nil
	}
	if trimmed[0] != '{' {
		return Config{}, errors.New("runtime handler config must be a JSON object, e.g. {} or {\"maxLogBytes\": 16384}")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("runtime handler config: %w (known keys: maxLogBytes, maxEventTypeBytes, maxEventBytes, maxMetricNames, all integers)", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Config{}, errors.New("runtime handler config: unexpected data after the JSON object")
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports the first limit outside its allowed range.
func (c Config) Validate() error {
	for _, l := range []struct {
		key      string
		v, lo, h int
	}{
		{"maxLogBytes", c.MaxLogBytes, 1, limits.MaxLogBytesLimit},
		{"maxEventTypeBytes", c.MaxEventTypeBytes, 1, limits.MaxEventTypeBytesLimit},
		{"maxEventBytes", c.MaxEventBytes, 1, limits.MaxEventBytesLimit},
		{"maxMetricNames", c.MaxMetricNames, 1, limits.MaxMetricNamesLimit},
	} {
		if l.v < l.lo || l.v > l.h {
			return fmt.Errorf("runtime handler config: %s is %d: must be between %d and %d", l.key, l.v, l.lo, l.h)
		}
	}
	return nil
}
