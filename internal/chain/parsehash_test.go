package chain

import (
	"strings"
	"testing"
)

func TestParseHash(t *testing.T) {
	h := ComputeHash(&Event{Seq: 1, Kind: KindLog, Data: []byte(`{}`)})
	tests := map[string]struct {
		in      string
		want    Hash
		wantErr string
	}{
		"round trip":    {in: h.String(), want: h},
		"upper case":    {in: strings.ToUpper(h.String()), want: h},
		"zero":          {in: strings.Repeat("0", 64), want: Hash{}},
		"empty":         {in: "", wantErr: `"" is not 64 hex digits`},
		"short":         {in: h.String()[:63], wantErr: "is not 64 hex digits"},
		"long":          {in: h.String() + "00", wantErr: "is not 64 hex digits"},
		"not hex":       {in: strings.Repeat("g", 64), wantErr: "is not 64 hex digits"},
		"huge is cut":   {in: strings.Repeat("x", 1<<20), wantErr: `xxx…" is not 64 hex digits`},
		"short of head": {in: h.Short(), wantErr: "is not 64 hex digits"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseHash(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || len(err.Error()) > 200 {
					t.Fatalf("ParseHash = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseHash = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}
