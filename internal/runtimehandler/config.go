package runtimehandler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Config holds the runtime handler's limits: the optional keys of the
// manifest's `[[handlers]] type = "runtime"` config. docs/runtime-handler.md
// documents each key.
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

// Defaults and bounds of the limits. The upper bounds keep a manifest from
// turning a limit off: every event lands in the chain and every log line in
// the host's log.
const (
	DefaultMaxLogBytes       = 16 << 10
	DefaultMaxEventTypeBytes = 256
	DefaultMaxEventBytes     = 1 << 20
	DefaultMaxMetricNames    = 100

	maxMaxLogBytes       = 1 << 20
	maxMaxEventTypeBytes = 4 << 10
	maxMaxEventBytes     = 8 << 20 // base64 in the event: about 11 MiB, under the chain's 16 MiB per event
	maxMaxMetricNames    = 10000
)

// DefaultConfig returns the limits that `config = {}` means.
func DefaultConfig() Config {
	return Config{
		MaxLogBytes:       DefaultMaxLogBytes,
		MaxEventTypeBytes: DefaultMaxEventTypeBytes,
		MaxEventBytes:     DefaultMaxEventBytes,
		MaxMetricNames:    DefaultMaxMetricNames,
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
		{"maxLogBytes", c.MaxLogBytes, 1, maxMaxLogBytes},
		{"maxEventTypeBytes", c.MaxEventTypeBytes, 1, maxMaxEventTypeBytes},
		{"maxEventBytes", c.MaxEventBytes, 1, maxMaxEventBytes},
		{"maxMetricNames", c.MaxMetricNames, 1, maxMaxMetricNames},
	} {
		if l.v < l.lo || l.v > l.h {
			return fmt.Errorf("runtime handler config: %s is %d: must be between %d and %d", l.key, l.v, l.lo, l.h)
		}
	}
	return nil
}
