package cmdutil

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

func TestNewLogger(t *testing.T) {
	for name, tc := range map[string]struct {
		level, format string
		wantErr       bool
	}{
		"json info":     {level: "info", format: "json"},
		"text debug":    {level: "debug", format: "text"},
		"error":         {level: "error", format: "json"},
		"unknown level": {level: "loud", format: "json", wantErr: true},
		"unknown form":  {level: "info", format: "xml", wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewLogger(tc.level, tc.format, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewLogger(%q, %q): %v, want error %v", tc.level, tc.format, err, tc.wantErr)
			}
		})
	}
	var b bytes.Buffer
	l, err := NewLogger("info", "json", &b)
	if err != nil {
		t.Fatal(err)
	}
	l.V(1).Info("hidden")
	l.Info("shown", "actor", "hello")
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("one JSON line, the debug one hidden: %q: %v", b.String(), err)
	}
	if line["msg"] != "shown" || line["actor"] != "hello" {
		t.Fatalf("logged %v", line)
	}
}

func TestRESTConfigReportsABadKubeconfig(t *testing.T) {
	if _, err := RESTConfig("/nonexistent/kubeconfig"); err == nil {
		t.Fatal("RESTConfig of a missing file: no error")
	}
}
