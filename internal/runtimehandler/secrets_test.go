package runtimehandler

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"

	"github.com/troupe-dev/troupe/internal/chain"
)

// setOf builds a set the way serving the values does.
func setOf(values ...string) *secretSet {
	var s *secretSet
	for _, v := range values {
		s = s.with(v)
	}
	return s
}

// padded returns s's values plus fillers that occur in no test text, so
// that the set takes the prefix-filter path.
func padded(values ...string) *secretSet {
	for i := range smallSecretSet + 1 {
		values = append(values, fmt.Sprintf("\x01filler-%02d", i))
	}
	s := setOf(values...)
	if s.filter == nil {
		panic("padded set is not on the filter path")
	}
	return s
}

func TestRedact(t *testing.T) {
	tests := map[string]struct {
		secrets []string
		in      string
		want    string
	}{
		"no occurrence":            {[]string{"hunter2"}, "nothing to see", "nothing to see"},
		"one":                      {[]string{"hunter2"}, "pw=hunter2!", "pw=[redacted]!"},
		"every occurrence":         {[]string{"hunter2"}, "hunter2 x hunter2", "[redacted] x [redacted]"},
		"adjacent become one":      {[]string{"hunter2"}, "hunter2hunter2", "[redacted]"},
		"self-overlapping":         {[]string{"aaaa"}, "aaaaaaaaa-", "[redacted]a-"},
		"overlapping values":       {[]string{"abcdef", "defghi"}, "xabcdefghiy", "x[redacted]y"},
		"one inside another":       {[]string{"secret", "secretvalue"}, "a secretvalue b", "a [redacted] b"},
		"whole text":               {[]string{"hunter2"}, "hunter2", "[redacted]"},
		"shorter than 4 bytes":     {[]string{"abc"}, "abc abc", "abc abc"},
		"trimmed form":             {[]string{"tok-123456\n"}, "got tok-123456.", "got [redacted]."},
		"value with its newline":   {[]string{"tok-123456\n"}, "got tok-123456\n!", "got [redacted]!"},
		"line of a multi-line one": {[]string{"-----BEGIN K-----\nAAAABBBB\n-----END K-----\n"}, "AAAABBBB", "[redacted]"},
		"multi-byte UTF-8":         {[]string{"pässwörd"}, "é pässwörd é", "é [redacted] é"},
		// A value ending as the marker begins: the first pass leaves
		// "abc[redacted]", which holds "abc[" again.
		"completed by the marker": {[]string{"abc[", "XYZW"}, "abcXYZW", "[redacted]redacted]"},
		// A value within the marker can't survive any marker: the text goes.
		"inside the marker": {[]string{"dact"}, "xdacty", ""},
		"the marker itself": {[]string{"[redacted]"}, "a [redacted] b", ""},
	}
	for name, tc := range tests {
		for _, path := range []string{"small", "filter"} {
			t.Run(name+"/"+path, func(t *testing.T) {
				s := setOf(tc.secrets...)
				if path == "filter" {
					s = padded(tc.secrets...)
				}
				got, changed := s.redact([]byte(tc.in))
				if string(got) != tc.want {
					t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
				}
				if changed != (tc.in != tc.want) {
					t.Errorf("changed = %v", changed)
				}
			})
		}
	}
}

func TestRedactUnchangedTextIsNotCopied(t *testing.T) {
	s := setOf("hunter2", "tok-123456")
	in := []byte("nothing secret here, just a longer line of ordinary text")
	out, changed := s.redact(in)
	if changed || &out[0] != &in[0] {
		t.Fatal("text without a secret was copied")
	}
}

func TestSecretSetBounds(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		var s *secretSet
		for i := range maxSecretValues + 44 {
			s = s.with(fmt.Sprintf("value-%04d", i))
		}
		if len(s.values) != maxSecretValues || len(s.known) != maxSecretValues {
			t.Fatalf("holds %d values (%d known), want %d", len(s.values), len(s.known), maxSecretValues)
		}
		// The oldest are forgotten first.
		if out, _ := s.redact([]byte("value-0000")); string(out) != "value-0000" {
			t.Errorf("the oldest value is still scrubbed: %q", out)
		}
		last := fmt.Sprintf("value-%04d", maxSecretValues+43)
		if out, _ := s.redact([]byte(last)); string(out) != Redacted {
			t.Errorf("the newest value is not scrubbed: %q", out)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		var s *secretSet
		for i := range 5 {
			s = s.with(strings.Repeat(string(rune('a'+i)), 300<<10))
		}
		if s.size > maxSecretBytes || len(s.values) != 3 {
			t.Fatalf("holds %d values, %d bytes; want 3 within %d", len(s.values), s.size, maxSecretBytes)
		}
	})
	t.Run("one value over the byte bound is kept", func(t *testing.T) {
		s := setOf("small-one", strings.Repeat("x", maxSecretBytes+1))
		if len(s.values) != 1 || len(s.values[0]) != maxSecretBytes+1 {
			t.Fatalf("holds %d values", len(s.values))
		}
	})
	t.Run("a value read again adds nothing", func(t *testing.T) {
		s := setOf("hunter2")
		if s.with("hunter2") != s {
			t.Fatal("the same value built a new set")
		}
	})
}

// TestRedactCostsNothingWithoutSecrets pins the promise that an actor that
// read no secret pays a nil check, and one that did pays no allocation
// for text without one.
func TestRedactCostsNothingWithoutSecrets(t *testing.T) {
	a, err := NewActor(ActorOptions{Chain: chain.NewMemory(chain.Options{}), Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	text := []byte(strings.Repeat("0123456789", 10))
	str := string(text)
	check := func(what string) {
		t.Helper()
		if n := testing.AllocsPerRun(100, func() {
			_ = a.RedactBytes(text)
			_ = a.Redact(str)
		}); n != 0 {
			t.Errorf("%s: %v allocations per call", what, n)
		}
	}
	check("no secret")
	for _, v := range []string{"hunter2", "tok-9f8e7d6c", "correct horse battery"} {
		a.rememberSecret(v)
	}
	check("3 secrets, none in the text")
	for i := range 20 {
		a.rememberSecret(fmt.Sprintf("many-%02d", i))
	}
	check("23 secrets (the filter scan), none in the text")
	if got := a.Redact("x hunter2 y"); got != "x [redacted] y" {
		t.Errorf("Redact = %q", got)
	}
}

// TestSecretsTheSourceKnowsAreScrubbedFromTheStart: a new actor scrubs
// every secret value its env source knows before it reads any, which is
// what keeps a secret an earlier run saved in its state out of the chain
// when the guest logs the state first.
func TestSecretsTheSourceKnowsAreScrubbedFromTheStart(t *testing.T) {
	tests := map[string]struct {
		env  EnvSource
		text string
		want string
	}{
		"a secret variable":         {env: MapEnv{"PW": {Value: "hunter2", Secret: true}}, text: "pw hunter2", want: "pw [redacted]"},
		"its trimmed line":          {env: MapEnv{"KEY": {Value: "line-one\nline-two\n", Secret: true}}, text: "got line-two", want: "got [redacted]"},
		"a plain variable is not":   {env: MapEnv{"GREETING": {Value: "hello there"}}, text: "hello there", want: "hello there"},
		"too short to scrub":        {env: MapEnv{"PIN": {Value: "123", Secret: true}}, text: "pin 123", want: "pin 123"},
		"what the source remembers": {env: knownSecrets{"old-token-1", "new-token-2"}, text: "old-token-1 then new-token-2", want: "[redacted] then [redacted]"},
		"no env":                    {text: "nothing to hide", want: "nothing to hide"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, err := NewActor(ActorOptions{Chain: chain.NewMemory(chain.Options{}), Env: tc.env})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Redact(tc.text); got != tc.want {
				t.Fatalf("Redact(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

// knownSecrets is an env source that serves nothing but knows secret
// values, as the host's does for a Secret that changed since a run read it.
type knownSecrets []string

func (knownSecrets) LookupEnv(string) (EnvValue, bool) { return EnvValue{}, false }

func (k knownSecrets) SecretValues() []string { return k }

// TestRedactConcurrently has the engine scrub while the call path learns
// new values (run with -race).
func TestRedactConcurrently(t *testing.T) {
	a, err := NewActor(ActorOptions{Chain: chain.NewMemory(chain.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 300 {
			a.rememberSecret(fmt.Sprintf("value-%04d", i))
		}
	}()
	for range 300 {
		if got := a.Redact("x value-0299 y"); got != "x value-0299 y" && got != "x [redacted] y" {
			t.Fatalf("Redact = %q", got)
		}
	}
	wg.Wait()
	if got := a.Redact("x value-0299 y"); got != "x [redacted] y" {
		t.Fatalf("Redact = %q", got)
	}
}

// referenceRedact is the definition, written the slow way: mark the bytes
// of each value's occurrences, taken left to right without overlapping
// each other, then replace each run of marked bytes by the marker.
func referenceRedact(values []string, text []byte) []byte {
	marked := make([]bool, len(text))
	for _, v := range values {
		for i := 0; i+len(v) <= len(text); {
			if string(text[i:i+len(v)]) != v {
				i++
				continue
			}
			for j := i; j < i+len(v); j++ {
				marked[j] = true
			}
			i += len(v)
		}
	}
	var out []byte
	for i := 0; i < len(text); {
		if !marked[i] {
			out = append(out, text[i])
			i++
			continue
		}
		out = append(out, Redacted...)
		for i < len(text) && marked[i] {
			i++
		}
	}
	return out
}

// FuzzRedact checks the scrubber against arbitrary text and values: the
// output holds no value of 4 bytes or more, whatever their overlaps; the
// value-by-value and the prefix-filter scans agree; text without a value
// is returned as is; and, when no value overlaps the marker, the output is
// exactly referenceRedact's.
func FuzzRedact(f *testing.F) {
	f.Add([]byte("pw=hunter2 and tok"), "hunter2", "tok-1", "")
	f.Add([]byte("xabcdefghiy"), "abcdef", "defghi", "cdefg")
	f.Add([]byte("abcXYZW"), "abc[", "XYZW", "")
	f.Add([]byte("SECRETab"), "SECRET", "d]ab", "")
	f.Add([]byte("a [redacted] b"), "[redacted]", "", "")
	f.Add([]byte("line one AAAABBBB"), "-----BEGIN-----\nAAAABBBB\n-----END-----", "", "")
	f.Add([]byte("aaaaaaaaa"), "aaaa", "aaaaa", "aa")
	f.Fuzz(func(t *testing.T, text []byte, s1, s2, s3 string) {
		small := setOf(s1, s2, s3)
		if small == nil {
			if out, _ := small.redact(text); !bytes.Equal(out, text) {
				t.Fatalf("an empty set changed %q to %q", text, out)
			}
			return
		}
		small = newSecretSet(small.values)
		small.filter, small.byPrefix, small.long = nil, nil, nil
		filter := newSecretSet(small.values)
		filter.buildFilter()
		out, changed := small.redact(text)
		out2, changed2 := filter.redact(text)
		if !bytes.Equal(out, out2) || changed != changed2 {
			t.Fatalf("scans disagree on %q: %q and %q", text, out, out2)
		}
		held := false
		for _, v := range small.values {
			if len(v) < MinRedactBytes {
				t.Fatalf("set holds %q, shorter than %d bytes", v, MinRedactBytes)
			}
			if bytes.Contains(out, []byte(v)) {
				t.Fatalf("redact(%q) = %q still holds %q", text, out, v)
			}
			held = held || bytes.Contains(text, []byte(v))
		}
		for _, v := range []string{s1, s2, s3} {
			if len(v) >= MinRedactBytes && bytes.Contains(out, []byte(v)) {
				t.Fatalf("redact(%q) = %q still holds the served %q", text, out, v)
			}
		}
		if !held && (changed || !bytes.Equal(out, text)) {
			t.Fatalf("text without a secret changed: %q to %q", text, out)
		}
		if held && !small.markerOverlap {
			if want := referenceRedact(small.values, text); !bytes.Equal(out, want) {
				t.Fatalf("redact(%q) = %q, want %q", text, out, want)
			}
		}
	})
}

// BenchmarkRedact measures the scan on text that holds no secret (the
// common case: the cost every log line pays once an actor read secrets),
// value by value and with the prefix filter, to place smallSecretSet.
func BenchmarkRedact(b *testing.B) {
	for _, size := range []int{100, 16 << 10} {
		text := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog 0123456789. "), size/56+1)[:size]
		for _, n := range []int{1, 3, 8, 16, 64, 256} {
			values := make([]string, n)
			for i := range values {
				values[i] = fmt.Sprintf("sk-%08x%08x", i*2654435761, i)
			}
			for _, path := range []string{"small", "filter"} {
				s := newSecretSet(values)
				if path == "filter" && s.filter == nil {
					s.buildFilter()
				} else if path == "small" {
					s.filter, s.byPrefix, s.long = nil, nil, nil
				}
				b.Run(fmt.Sprintf("%dB/%d/%s", size, n, path), func(b *testing.B) {
					b.SetBytes(int64(size))
					b.ReportAllocs()
					for b.Loop() {
						if _, changed := s.redact(text); changed {
							b.Fatal("changed")
						}
					}
				})
			}
		}
	}
}
