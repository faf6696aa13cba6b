package runtimehandler

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/chain"
)

// fuzzGuest is one runtime and guest instance shared by a fuzz worker's
// iterations: compiling per input would make the fuzzer crawl.
var fuzzGuest = sync.OnceValues(func() (api.Module, error) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	if _, err := Instantiate(ctx, r); err != nil {
		return nil, err
	}
	wasm, err := readTestdata("guest.wasm")
	if err != nil {
		return nil, err
	}
	return r.Instantiate(ctx, wasm)
})

// fuzzExports are the pass-through exports, by selector.
var fuzzExports = []struct {
	name   string
	params int // i32 parameters besides record-metric's f64
	result string
}{
	{"call-get-actor-id", 1, "string"},
	{"call-get-actor-name", 1, "string"},
	{"call-get-current-time", 0, ""},
	{"call-get-env", 3, "option"},
	{"call-log", 5, "result"},
	{"call-record-metric", 3, "result"}, // name ptr, name len, retptr (+ the f64)
	{"call-record-event", 5, "result"},
	{"call-get-theater-version", 1, "string"},
	{"call-get-system-info", 1, "sysinfo"},
	{"call-shutdown", 4, "result"},
	{"call-send", 5, "result"},
	{"call-request", 5, "bytes"},
}

// FuzzHostCall hands every runtime function arbitrary guest memory,
// parameters and allocator answers. Whatever the input, a call either
// succeeds with a well-formed result and one well-formed event, or traps
// with a *TrapError; the host never panics, hangs or allocates wildly; and
// the secret the actor was served never reaches the event, not even
// base64-encoded in its data.
func FuzzHostCall(f *testing.F) {
	f.Add(uint8(4), []byte("infohello"), uint32(0), uint32(4), uint32(4), uint32(5), uint32(16), 1.0, uint8(0), uint32(0))
	f.Add(uint8(3), []byte("GREETING"), uint32(0), uint32(8), uint32(16), uint32(0), uint32(0), 0.0, uint8(0), uint32(0))
	f.Add(uint8(3), []byte("DB_PASSWORD"), uint32(0), uint32(11), uint32(16), uint32(0), uint32(0), 0.0, uint8(1), uint32(65530))
	f.Add(uint8(5), []byte("jobs_done"), uint32(0), uint32(9), uint32(16), uint32(0), uint32(0), math.NaN(), uint8(0), uint32(0))
	f.Add(uint8(6), []byte("t\xffdata"), uint32(0), uint32(2), uint32(2), uint32(4), uint32(16), 0.0, uint8(0), uint32(0))
	f.Add(uint8(8), []byte{}, uint32(24), uint32(0), uint32(0), uint32(0), uint32(0), 0.0, uint8(2), uint32(0))
	f.Add(uint8(9), []byte("bye"), uint32(1), uint32(0), uint32(3), uint32(16), uint32(0), 0.0, uint8(0), uint32(0))
	f.Add(uint8(4), []byte("WARN"), uint32(0), uint32(4), uint32(0xFFFFFFF0), uint32(0x7FFFFFFF), uint32(16), 0.0, uint8(3), uint32(0))
	f.Add(uint8(0), []byte{}, uint32(16), uint32(0), uint32(0), uint32(0), uint32(0), 0.0, uint8(1), uint32(3))
	f.Add(uint8(4), []byte("infopw hunter2"), uint32(0), uint32(4), uint32(4), uint32(10), uint32(16), 0.0, uint8(0), uint32(0))
	f.Add(uint8(6), []byte("hunter2:hunter2"), uint32(0), uint32(7), uint32(8), uint32(7), uint32(16), 0.0, uint8(0), uint32(0))
	f.Add(uint8(9), []byte("bye hunter2"), uint32(1), uint32(0), uint32(11), uint32(16), uint32(0), 0.0, uint8(0), uint32(0))
	f.Add(uint8(10), []byte("counterinc hunter2"), uint32(0), uint32(7), uint32(7), uint32(11), uint32(16), 0.0, uint8(0), uint32(0))
	f.Add(uint8(11), []byte("counterget"), uint32(0), uint32(7), uint32(7), uint32(3), uint32(16), 0.0, uint8(0), uint32(0))
	f.Add(uint8(11), []byte("counterget"), uint32(0), uint32(0x7FFFFFFF), uint32(7), uint32(0x80000000), uint32(16), 0.0, uint8(0), uint32(0))
	f.Add(uint8(10), []byte("c"), uint32(0xFFFFFFF0), uint32(8), uint32(0xFFFFFF00), uint32(4000), uint32(16), 0.0, uint8(1), uint32(5))
	f.Fuzz(func(t *testing.T, sel uint8, mem []byte, p0, p1, p2, p3, p4 uint32, value float64, mode uint8, answer uint32) {
		mod, err := fuzzGuest()
		if err != nil {
			t.Fatal(err)
		}
		ex := fuzzExports[int(sel)%len(fuzzExports)]
		c := chain.NewMemory(chain.Options{})
		a, err := NewActor(ActorOptions{
			ID: "fuzz-id", Name: "fuzz", Chain: c, Config: Config{MaxLogBytes: 64, MaxEventTypeBytes: 16, MaxEventBytes: 256, MaxMetricNames: 2},
			Env:        MapEnv{"GREETING": {Value: "hi"}, "DB_PASSWORD": {Value: "hunter2", Secret: true}},
			SystemInfo: &fakeSys{info: testSysInfo}, Messenger: &fakeMessenger{}, MaxMessageBytes: 4096,
		})
		if err != nil {
			t.Fatal(err)
		}
		a.rememberSecret("hunter2") // as if an earlier call had read DB_PASSWORD
		ctx := WithActor(context.Background(), a)
		// Fresh guest state: memory image at 0, bump heap, allocator mode
		// (0 bump, 1 fixed answer, 2 trap, 3 re-enter; the endless loop is
		// covered by a test, not here).
		m := mod.Memory()
		if len(mem) > 32768 {
			mem = mem[:32768]
		}
		zero := make([]byte, 65536)
		copy(zero, mem)
		m.Write(0, zero)
		for _, call := range []struct {
			fn string
			v  uint64
		}{{"set-heap", 32768}, {"set-realloc-mode", uint64(mode % 4)}, {"set-realloc-answer", uint64(answer)}} {
			if _, err := mod.ExportedFunction(call.fn).Call(ctx, call.v); err != nil {
				t.Fatal(err)
			}
		}
		params := []uint64{uint64(p0), uint64(p1), uint64(p2), uint64(p3), uint64(p4)}[:ex.params]
		retptr := uint32(0)
		if ex.params > 0 {
			retptr = uint32(params[len(params)-1])
		}
		if ex.name == "call-record-metric" {
			params = []uint64{uint64(p0), uint64(p1), api.EncodeF64(value), uint64(p2)}
		}
		res, err := mod.ExportedFunction(ex.name).Call(ctx, params...)
		_, length := c.Head()
		if err != nil {
			var te *TrapError
			if !errors.As(err, &te) {
				t.Fatalf("%s: an error that is not a *TrapError: %v", ex.name, err)
			}
			// A request records RequestSent before it waits, and its
			// ResponseReceived before the response is lowered (where
			// the allocator may trap).
			if length > 1 && !(ex.name == "call-request" && length == 2) {
				t.Fatalf("%d events for one trapped call", length)
			}
			return
		}
		if want := uint64(1); length != want && !(ex.name == "call-request" && length == 2) {
			t.Fatalf("%s: %d events for one call", ex.name, length)
		}
		_ = c.Events(func(e chain.Event) error {
			if !json.Valid(e.Data) || !utf8.Valid(e.Data) {
				t.Fatalf("event data is not valid JSON: %q", e.Data)
			}
			var decoded any
			if err := json.Unmarshal(e.Data, &decoded); err != nil {
				t.Fatal(err)
			}
			if leakOf(decoded, []string{"hunter2"}) != "" {
				t.Fatalf("secret in the chain: %s", e.Data)
			}
			return nil
		})
		read := func(at, n uint32) []byte {
			b, ok := m.Read(at, n)
			if !ok {
				t.Fatalf("%s: result (%d, %d) outside memory", ex.name, at, n)
			}
			return b
		}
		str := func(at uint32) string {
			hdr := read(at, 8)
			return string(read(binary.LittleEndian.Uint32(hdr), binary.LittleEndian.Uint32(hdr[4:])))
		}
		// An allocator answering one fixed pointer may hand out memory that
		// overlaps the return area, so the strings overwrite each other and
		// the pairs, as they would under any canonical-ABI host: then only
		// the discriminant, written last, can be checked.
		if mode%4 != 0 {
			if ex.result == "option" || ex.result == "result" || ex.result == "bytes" {
				if d := read(retptr, 1)[0]; d > 1 {
					t.Fatalf("%s: discriminant %d", ex.name, d)
				}
			}
			return
		}
		switch ex.result {
		case "string":
			if s := str(retptr); s != "fuzz" && s != "fuzz-id" && !strings.HasPrefix(s, "v") && s != "dev" {
				t.Fatalf("%s returned %q", ex.name, s)
			}
		case "option", "result":
			d := read(retptr, 1)[0]
			if d > 1 {
				t.Fatalf("%s: discriminant %d", ex.name, d)
			}
			if d == 1 {
				if s := str(retptr + 4); !utf8.ValidString(s) {
					t.Fatalf("%s: payload not UTF-8", ex.name)
				}
			}
		case "bytes":
			// request's ok is the fake's echo of the (scrubbed) message.
			d := read(retptr, 1)[0]
			if d > 1 {
				t.Fatalf("%s: discriminant %d", ex.name, d)
			}
			if s := str(retptr + 4); d == 0 && !strings.HasPrefix(s, "echo:") || d == 1 && !utf8.ValidString(s) {
				t.Fatalf("%s: result %d %q", ex.name, d, s)
			}
		case "sysinfo":
			h, _, _ := str(retptr), str(retptr+8), str(retptr+16)
			if h != testSysInfo.Hostname {
				t.Fatalf("system info hostname %q", h)
			}
		case "":
			if len(res) != 1 {
				t.Fatal("no time")
			}
		}
	})
}

// promName is the Prometheus rule for a metric an exporter names: no ':',
// which is kept for recording rules.
var promName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// FuzzMetricName checks the hand-written validator against the Prometheus
// rule as a regular expression, less the reserved endings.
func FuzzMetricName(f *testing.F) {
	for _, s := range []string{"", "a", "requests_total", "1a", "__x", "_x", ":x", "a-b", "é", "a\xff", strings.Repeat("a", 201), "x_recorded", "x_recorded_sum", "x_recorded_count", "x_recorded_total"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := promName.MatchString(name) && !strings.HasPrefix(name, "__") && len(name) <= maxMetricNameBytes &&
			!strings.HasSuffix(name, "_recorded") && !strings.HasSuffix(name, "_recorded_sum") && !strings.HasSuffix(name, "_recorded_count")
		msg := metricNameError([]byte(name))
		if got := msg == ""; got != want {
			t.Fatalf("%q: valid=%v (%q), want %v", name, got, msg, want)
		}
		if len(msg) > 300 {
			t.Fatalf("error of %d bytes", len(msg))
		}
	})
}

// FuzzParseLevel checks the allocation-free level parser against
// strings.EqualFold.
func FuzzParseLevel(f *testing.F) {
	for _, s := range []string{"debug", "INFO", "Warn", "error", "", "verbose", "ınfo", "inFo\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseLevel([]byte(s))
		want := ""
		for _, l := range []string{"debug", "info", "warn", "error"} {
			if len(s) == len(l) && strings.EqualFold(s, l) {
				want = l
			}
		}
		if ok != (want != "") || got != want {
			t.Fatalf("%q: got %q %v, want %q", s, got, ok, want)
		}
	})
}

// FuzzParseConfig: any input parses or fails cleanly; what parses is valid
// and survives a round trip.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"", "{}", "null", `{"maxLogBytes":1}`, `{"maxMetricNames":0}`, `{"x":1}`, `[]`, `{} x`, `{"maxEventBytes":1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := ParseConfig(raw)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted an invalid config: %v", err)
		}
		again, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseConfig(again); err != nil || back != cfg {
			t.Fatalf("round trip: %+v, %v", back, err)
		}
	})
}

// FuzzLogWriter: whatever a guest writes to stdout, every recorded line is
// valid UTF-8 within the limit (or a single rune, when the limit is below
// a rune's size), and no byte of valid input is lost.
func FuzzLogWriter(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), uint8(4), uint8(3))
	f.Add([]byte("abcé\r\n\xff\xfe\n"), uint8(4), uint8(1))
	f.Add([]byte("日本語のテキスト\n"), uint8(2), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, max uint8, chunk uint8) {
		limit := int(max%32) + 1
		c := chain.NewMemory(chain.Options{})
		a, err := NewActor(ActorOptions{ID: "id", Chain: c, Config: Config{MaxLogBytes: limit, MaxEventTypeBytes: 1, MaxEventBytes: 1, MaxMetricNames: 1}})
		if err != nil {
			t.Fatal(err)
		}
		w := a.LogWriter("info")
		step := int(chunk%16) + 1
		for rest := data; len(rest) > 0; {
			n := min(step, len(rest))
			if k, err := w.Write(rest[:n]); err != nil || k != n {
				t.Fatalf("Write = %d, %v", k, err)
			}
			rest = rest[n:]
		}
		a.Close()
		var out strings.Builder
		_ = c.Events(func(e chain.Event) error {
			var d struct{ Message string }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			m := d.Message
			if !utf8.ValidString(m) {
				t.Fatalf("line %q not UTF-8", m)
			}
			if len(m) > limit && utf8.RuneCountInString(m) != 1 {
				t.Fatalf("line of %d bytes over the limit %d: %q", len(m), limit, m)
			}
			out.WriteString(m)
			return nil
		})
		// For clean input (valid UTF-8, no CR), the lines are the input
		// without its newlines.
		if utf8.Valid(data) && !strings.Contains(string(data), "\r") {
			want := strings.ReplaceAll(string(data), "\n", "")
			if out.String() != want {
				t.Fatalf("lines join to %q, want %q", out.String(), want)
			}
		}
	})
}
