package textutil

import (
	"math"
	"testing"
)

func TestFormatBytes(t *testing.T) {
	tests := map[string]struct {
		n    uint64
		want string
	}{
		"zero":              {0, "0 B"},
		"under a KiB":       {1023, "1023 B"},
		"one KiB":           {1024, "1.0 KiB"},
		"a Go actor":        {3407872, "3.2 MiB"},
		"one GiB":           {1 << 30, "1.0 GiB"},
		"the most there is": {math.MaxUint64, "16.0 EiB"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := FormatBytes(tc.n); got != tc.want {
				t.Errorf("FormatBytes(%d) = %q, want %q", tc.n, got, tc.want)
			}
		})
	}
}
