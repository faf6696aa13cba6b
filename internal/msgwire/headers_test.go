package msgwire

import (
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actorhost"
)

func TestDecodeFrom(t *testing.T) {
	tests := map[string]struct {
		in   string
		want actorhost.Sender
		err  bool
	}{
		"actor":          {in: `{"actorID":"i","namespace":"n","name":"a"}`, want: actorhost.Sender{ActorID: "i", Namespace: "n", Name: "a"}},
		"external":       {in: `{"external":"user:alice"}`, want: actorhost.Sender{External: "user:alice"}},
		"missing":        {in: ``, err: true},
		"both":           {in: `{"actorID":"i","namespace":"n","name":"a","external":"x"}`, err: true},
		"no actor id":    {in: `{"namespace":"n","name":"a"}`, err: true},
		"unknown field":  {in: `{"external":"x","admin":true}`, err: true},
		"trailing":       {in: `{"external":"x"}{}`, err: true},
		"control":        {in: `{"external":"x\n"}`, err: true},
		"comma":          {in: `{"actorID":"a,b","namespace":"n","name":"a"}`, err: true},
		"too long":       {in: `{"external":"` + strings.Repeat("x", MaxFromBytes) + `"}`, err: true},
		"not json":       {in: `external=x`, err: true},
		"field too long": {in: `{"external":"` + strings.Repeat("x", MaxSenderField+1) + `"}`, err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeFrom(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("DecodeFrom(%q) = %+v, %v", tc.in, got, err)
			}
			if err == nil {
				if back, _ := DecodeFrom(EncodeFrom(got)); back != got {
					t.Errorf("round trip: %+v", back)
				}
			}
		})
	}
}

func TestDecodePath(t *testing.T) {
	tests := map[string]struct {
		in   string
		want string
		err  bool
	}{
		"empty":    {in: "", want: ""},
		"one":      {in: "a", want: "a"},
		"three":    {in: "a,b,c", want: "a,b,c"},
		"empty id": {in: "a,,c", err: true},
		"trailing": {in: "a,", err: true},
		"space":    {in: "a, b", err: true},
		"too many": {in: strings.Repeat("a,", MaxPathLen) + "a", err: true},
		"too long": {in: strings.Repeat("a", MaxPathBytes+1), err: true},
		"long id":  {in: strings.Repeat("a", MaxIDBytes+1), err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := DecodePath(tc.in)
			if (err != nil) != tc.err || strings.Join(got, ",") != tc.want {
				t.Fatalf("DecodePath(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}

func TestDecodeEpochTimeout(t *testing.T) {
	for _, v := range []string{"", "-1", "x", "1.5", "99999999999999999999"} {
		if _, err := DecodeEpoch(v); err == nil {
			t.Errorf("DecodeEpoch(%q) accepted", v)
		}
	}
	if e, err := DecodeEpoch("42"); err != nil || e != 42 {
		t.Errorf("DecodeEpoch(42) = %d, %v", e, err)
	}
	for _, v := range []string{"0", "-5", "x", "3600001"} {
		if _, err := DecodeTimeout(v); err == nil {
			t.Errorf("DecodeTimeout(%q) accepted", v)
		}
	}
	if d, err := DecodeTimeout(EncodeTimeout(1500 * time.Millisecond)); err != nil || d != 1500*time.Millisecond {
		t.Errorf("timeout round trip: %v, %v", d, err)
	}
	if d, _ := DecodeTimeout(EncodeTimeout(time.Microsecond)); d != time.Millisecond {
		t.Errorf("a sub-millisecond timeout is %v", d)
	}
}

// FuzzDecodeFrom: hostile input never panics, and what is accepted is
// within bounds and survives a round trip.
func FuzzDecodeFrom(f *testing.F) {
	for _, s := range []string{`{"actorID":"i","namespace":"n","name":"a"}`, `{"external":"user:alice"}`, `{}`, `{"external":"\u0000"}`, `[`, `{"name":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := DecodeFrom(in)
		if err != nil {
			return
		}
		for _, v := range []string{s.ActorID, s.Namespace, s.Name, s.External} {
			if len(v) > MaxSenderField || strings.ContainsAny(v, ", \n") {
				t.Fatalf("accepted %+v", s)
			}
		}
		back, err := DecodeFrom(EncodeFrom(s))
		if err != nil || back != s {
			t.Fatalf("round trip of %+v: %+v, %v", s, back, err)
		}
	})
}

// FuzzDecodePath: never panics; accepted paths are bounded and round-trip.
func FuzzDecodePath(f *testing.F) {
	for _, s := range []string{"", "a", "a,b", ",", "a,,b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := DecodePath(in)
		if err != nil {
			return
		}
		if len(p) > MaxPathLen {
			t.Fatalf("%d ids", len(p))
		}
		if EncodePath(p) != in {
			t.Fatalf("round trip of %q: %q", in, EncodePath(p))
		}
	})
}
