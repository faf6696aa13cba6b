package traceparent

import (
	"strings"
	"testing"
)

func TestNewAndChild(t *testing.T) {
	a, b := New(), New()
	if !Valid(a) || !Valid(b) || a == b {
		t.Fatalf("New() = %q, %q: want two distinct valid traceparents", a, b)
	}
	c := Child(a)
	if !Valid(c) || TraceID(c) != TraceID(a) || c == a || c[53:] != a[53:] {
		t.Fatalf("Child(%q) = %q: want the same trace and flags, a new parent id", a, c)
	}
	unsampled := a[:53] + "00"
	if got := Child(unsampled); got[53:] != "00" {
		t.Errorf("Child(%q) = %q: the flags must be kept", unsampled, got)
	}
	if got := Child("garbage"); !Valid(got) || TraceID(got) == "" {
		t.Errorf("Child(garbage) = %q: want a new trace", got)
	}
}

func TestValid(t *testing.T) {
	good := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := map[string]struct {
		in   string
		want bool
	}{
		"the spec's example":  {good, true},
		"empty":               {"", false},
		"uppercase hex":       {strings.ToUpper(good), false},
		"version ff":          {"ff" + good[2:], false},
		"zero trace id":       {"00-" + strings.Repeat("0", 32) + good[35:], false},
		"zero parent id":      {good[:36] + strings.Repeat("0", 16) + good[52:], false},
		"too long":            {good + "-x", false},
		"wrong separator":     {good[:35] + "_" + good[36:], false},
		"non-hex flags":       {good[:53] + "zz", false},
		"non-hex in trace id": {good[:3] + "g" + good[4:], false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Valid(tc.in); got != tc.want {
				t.Errorf("Valid(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
