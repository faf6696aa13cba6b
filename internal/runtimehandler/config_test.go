package runtimehandler

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	def := DefaultConfig()
	with := func(f func(*Config)) Config { c := def; f(&c); return c }
	tests := map[string]struct {
		raw     string
		want    Config
		wantErr string
	}{
		"empty":             {raw: "", want: def},
		"whitespace":        {raw: " \n\t", want: def},
		"null":              {raw: "null", want: def},
		"empty object":      {raw: "{}", want: def},
		"one key":           {raw: `{"maxLogBytes": 1024}`, want: with(func(c *Config) { c.MaxLogBytes = 1024 })},
		"all keys":          {raw: `{"maxLogBytes":1,"maxEventTypeBytes":2,"maxEventBytes":3,"maxMetricNames":4}`, want: Config{1, 2, 3, 4}},
		"upper bounds":      {raw: `{"maxLogBytes":1048576,"maxEventTypeBytes":4096,"maxEventBytes":8388608,"maxMetricNames":10000}`, want: Config{1 << 20, 4 << 10, 8 << 20, 10000}},
		"unknown key":       {raw: `{"maxLogBytez": 1}`, wantErr: `unknown field "maxLogBytez"`},
		"zero":              {raw: `{"maxMetricNames": 0}`, wantErr: "maxMetricNames is 0: must be between 1 and 10000"},
		"negative":          {raw: `{"maxLogBytes": -1}`, wantErr: "maxLogBytes is -1: must be between 1 and 1048576"},
		"too big":           {raw: `{"maxEventBytes": 1073741824}`, wantErr: "maxEventBytes is 1073741824: must be between 1 and 8388608"},
		"event type big":    {raw: `{"maxEventTypeBytes": 5000}`, wantErr: "maxEventTypeBytes is 5000: must be between 1 and 4096"},
		"fraction":          {raw: `{"maxLogBytes": 1.5}`, wantErr: "maxLogBytes"},
		"string value":      {raw: `{"maxLogBytes": "1k"}`, wantErr: "maxLogBytes"},
		"overflowing int":   {raw: `{"maxLogBytes": 99999999999999999999999}`, wantErr: "maxLogBytes"},
		"array":             {raw: `[]`, wantErr: "must be a JSON object"},
		"string":            {raw: `"x"`, wantErr: "must be a JSON object"},
		"trailing data":     {raw: `{} {}`, wantErr: "unexpected data after the JSON object"},
		"truncated":         {raw: `{"maxLogBytes": 1`, wantErr: "runtime handler config"},
		"mentions the keys": {raw: `{"x": 1}`, wantErr: "known keys: maxLogBytes, maxEventTypeBytes, maxEventBytes, maxMetricNames"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNewActorValidates(t *testing.T) {
	if _, err := NewActor(ActorOptions{ID: "x"}); err == nil || !strings.Contains(err.Error(), "Chain is required") {
		t.Fatalf("no chain: %v", err)
	}
	if _, err := NewActor(ActorOptions{ID: "x", Chain: failingRecorder{}, Config: Config{MaxLogBytes: 5}}); err == nil ||
		!strings.Contains(err.Error(), "maxEventTypeBytes is 0") {
		t.Fatalf("partial config: %v", err)
	}
	a, err := NewActor(ActorOptions{ID: "x", Chain: failingRecorder{}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Config() != DefaultConfig() || a.version == "" || a.sys == nil || a.env == nil {
		t.Fatalf("defaults not applied: %+v", a)
	}
	if _, ok := a.env.LookupEnv("PATH"); ok {
		t.Fatal("an actor without Env sees the host's PATH")
	}
}
