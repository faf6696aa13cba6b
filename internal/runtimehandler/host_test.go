package runtimehandler

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
)

func TestStringGetters(t *testing.T) {
	tests := map[string]struct {
		export, op, want string
	}{
		"actor id":        {"call-get-actor-id", abi.GetActorID.Name, "3f2c1f9e-0d7a-4c53-9a7e-5b1d2c3e4f50"},
		"actor name":      {"call-get-actor-name", abi.GetActorName.Name, "hello"},
		"theater version": {"call-get-theater-version", abi.GetTheaterVersion.Name, "v1.2.3-test"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "guest.wasm")
			h.mustCall(tc.export, retArea)
			if got := h.str(retArea); got != tc.want {
				t.Fatalf("guest got %q, want %q", got, tc.want)
			}
			// The string lives in memory the guest's allocator handed out.
			if p := h.u32(retArea); p < 32768 {
				t.Fatalf("string at %d: not from cabi_realloc's heap", p)
			}
			e, data := h.last()
			if e.Kind != chain.KindRuntimeOperation || e.Op != tc.op || data["result"] != tc.want || len(data) != 1 {
				t.Fatalf("event %s %s %s", e.Kind, e.Op, e.Data)
			}
		})
	}
}

func TestGetCurrentTime(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	res := h.mustCall("call-get-current-time")
	if want := uint64(fixedTime.UnixMilli()); res[0] != want {
		t.Fatalf("got %d, want %d", res[0], want)
	}
	e, data := h.last()
	if e.Kind != chain.KindRuntimeOperation || e.Op != abi.GetCurrentTime.Name || data["result"] != float64(fixedTime.UnixMilli()) {
		t.Fatalf("event %s %s %s", e.Kind, e.Op, e.Data)
	}
}

func TestGetCurrentTimeBefore1970ReadsZero(t *testing.T) {
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) {
		o.Now = func() time.Time { return time.Unix(-100, 0) }
	})
	if res := h.mustCall("call-get-current-time"); res[0] != 0 {
		t.Fatalf("got %d, want 0", res[0])
	}
}

func TestGetEnv(t *testing.T) {
	t.Setenv("TROUPE_HOST_ONLY", "leak") // the host's environment must never be served
	tests := map[string]struct {
		name       []byte
		wantSome   bool
		wantValue  string
		wantRecord string // the value as the chain records it; "" for no value key
		wantReason string
	}{
		"declared":             {name: []byte("GREETING"), wantSome: true, wantValue: "hi there", wantRecord: `"value":"hi there"`},
		"declared empty":       {name: []byte("EMPTY"), wantSome: true, wantValue: "", wantRecord: `"value":""`},
		"secret is redacted":   {name: []byte("DB_PASSWORD"), wantSome: true, wantValue: "hunter2", wantRecord: `"value":{"redacted":true}`},
		"undeclared":           {name: []byte("NOPE")},
		"host env not served":  {name: []byte("TROUPE_HOST_ONLY")},
		"host PATH not served": {name: []byte("PATH")},
		"case matters":         {name: []byte("greeting")},
		"empty name":           {name: []byte("")},
		"invalid UTF-8":        {name: []byte("GREET\xffING"), wantReason: "name is not valid UTF-8"},
		"huge name":            {name: bytes.Repeat([]byte("A"), maxEnvNameBytes+1), wantReason: "name longer than 4096 bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "guest.wasm")
			h.write(argArea, tc.name)
			h.write(retArea, []byte{0xAA, 0xAA, 0xAA, 0xAA}) // the discriminant must be overwritten
			h.mustCall("call-get-env", argArea, uint64(len(tc.name)), retArea)
			switch d := h.u8(retArea); {
			case tc.wantSome && d != 1, !tc.wantSome && d != 0:
				t.Fatalf("discriminant %d, want some=%v", d, tc.wantSome)
			}
			if tc.wantSome {
				if got := h.str(retArea + 4); got != tc.wantValue {
					t.Fatalf("value %q, want %q", got, tc.wantValue)
				}
			}
			e, data := h.last()
			if e.Kind != chain.KindRuntimeOperation || e.Op != abi.GetEnv.Name {
				t.Fatalf("event %s %s", e.Kind, e.Op)
			}
			if data["found"] != tc.wantSome {
				t.Fatalf("found = %v in %s", data["found"], e.Data)
			}
			if bytes.Contains(e.Data, []byte("hunter2")) || bytes.Contains(e.Data, []byte("leak")) {
				t.Fatalf("event leaks a secret or host value: %s", e.Data)
			}
			if tc.wantRecord != "" && !bytes.Contains(e.Data, []byte(tc.wantRecord)) {
				t.Fatalf("event %s lacks %s", e.Data, tc.wantRecord)
			}
			if tc.wantRecord == "" {
				if _, ok := data["value"]; ok {
					t.Fatalf("undeclared name recorded a value: %s", e.Data)
				}
			}
			if tc.wantReason != "" {
				if data["reason"] != tc.wantReason {
					t.Fatalf("reason %v, want %q", data["reason"], tc.wantReason)
				}
			} else if data["name"] != string(tc.name) {
				t.Fatalf("name %v recorded, want %q", data["name"], tc.name)
			}
		})
	}
}

// envFunc is an EnvSource whose values change, as a ConfigMap's do.
type envFunc func(string) (EnvValue, bool)

func (f envFunc) LookupEnv(n string) (EnvValue, bool) { return f(n) }

func (f envFunc) SecretValues() []string { return nil }

func TestGetEnvSeesChangedValues(t *testing.T) {
	value := "one"
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) {
		o.Env = envFunc(func(n string) (EnvValue, bool) { return EnvValue{Value: value}, n == "FLAG" })
	})
	p, n := h.writeStr(argArea, "FLAG")
	for _, want := range []string{"one", "two"} {
		value = want
		h.mustCall("call-get-env", p, n, retArea)
		if got := h.str(retArea + 4); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestLog(t *testing.T) {
	tests := map[string]struct {
		level, msg string
		wantLevel  string // recorded level
		wantErr    string
	}{
		"debug":              {level: "debug", msg: "d", wantLevel: "debug"},
		"info":               {level: "info", msg: "hello", wantLevel: "info"},
		"warn":               {level: "warn", msg: "careful", wantLevel: "warn"},
		"error":              {level: "error", msg: "boom", wantLevel: "error"},
		"upper case":         {level: "INFO", msg: "x", wantLevel: "info"},
		"mixed case":         {level: "WaRn", msg: "x", wantLevel: "warn"},
		"format verbs kept":  {level: "info", msg: "100%s %d %v %!", wantLevel: "info"},
		"empty message":      {level: "info", msg: "", wantLevel: "info"},
		"unicode":            {level: "info", msg: "héllo wörld ✓", wantLevel: "info"},
		"at the limit":       {level: "info", msg: strings.Repeat("a", limits.DefaultMaxLogBytes), wantLevel: "info"},
		"unknown level":      {level: "verbose", msg: "x", wantErr: `unknown log level "verbose": use one of debug, info, warn, error`},
		"empty level":        {level: "", msg: "x", wantErr: `unknown log level "": use one of debug, info, warn, error`},
		"level with spaces":  {level: " info", msg: "x", wantErr: `unknown log level " info"`},
		"over the limit":     {level: "info", msg: strings.Repeat("a", limits.DefaultMaxLogBytes+1), wantErr: "log message is 16385 bytes: the limit is 16384 (maxLogBytes)"},
		"invalid UTF-8":      {level: "info", msg: "bad \xc3\x28", wantErr: "log message is not valid UTF-8"},
		"huge unknown level": {level: strings.Repeat("z", 1000), msg: "x", wantErr: `unknown log level "zzzz`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "guest.wasm")
			lp, ll := h.writeStr(argArea, tc.level)
			mp, ml := h.writeStr(argArea2, tc.msg)
			h.mustCall("call-log", lp, ll, mp, ml, retArea)
			gotErr, isErr := h.resultErr()
			e, data := h.last()
			if e.Kind != chain.KindLog || e.Op != abi.Log.Name {
				t.Fatalf("event %s %s", e.Kind, e.Op)
			}
			if tc.wantErr != "" {
				if !isErr || !strings.HasPrefix(gotErr, tc.wantErr) {
					t.Fatalf("result err %q (isErr %v), want %q", gotErr, isErr, tc.wantErr)
				}
				if len(gotErr) > 200 {
					t.Fatalf("error message of %d bytes: a guest string made it huge", len(gotErr))
				}
				if data["error"] != gotErr {
					t.Fatalf("event error %v, want %q", data["error"], gotErr)
				}
				if _, ok := data["message"]; ok {
					t.Fatal("a refused message was recorded")
				}
				if len(h.logs.all()) != 0 {
					t.Fatal("a refused message was logged")
				}
				return
			}
			if isErr {
				t.Fatalf("unexpected err %q", gotErr)
			}
			if data["level"] != tc.wantLevel || data["message"] != tc.msg {
				t.Fatalf("event %s", e.Data)
			}
			lines := h.logs.all()
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1", len(lines))
			}
			l := lines[0]
			if l["msg"] != tc.msg || l["namespace"] != "default" || l["name"] != "hello" ||
				l["actorID"] != "3f2c1f9e-0d7a-4c53-9a7e-5b1d2c3e4f50" {
				t.Fatalf("log line %v", l)
			}
			switch tc.wantLevel {
			case "debug":
				if l["v"] != float64(1) {
					t.Fatalf("debug line at %v, want V(1)", l["v"])
				}
			case "info":
				if l["v"] != float64(0) || l["level"] != nil {
					t.Fatalf("info line %v", l)
				}
			case "warn":
				if l["v"] != float64(0) || l["level"] != "warn" {
					t.Fatalf("warn line %v", l)
				}
			case "error":
				if _, ok := l["error"]; !ok {
					t.Fatalf("error line %v not logged with Error", l)
				}
			}
		})
	}
}

func TestLogDebugHiddenBelowVerbosity(t *testing.T) {
	var lines []string
	quiet := funcr.NewJSON(func(obj string) { lines = append(lines, obj) }, funcr.Options{Verbosity: 0})
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) { o.Logger = quiet })
	lp, ll := h.writeStr(argArea, "debug")
	mp, ml := h.writeStr(argArea2, "noisy")
	h.mustCall("call-log", lp, ll, mp, ml, retArea)
	if msg, isErr := h.resultErr(); isErr {
		t.Fatal(msg)
	}
	if len(lines) != 0 {
		t.Fatalf("debug line logged at verbosity 0: %v", lines)
	}
	// Hidden from the log, still in the chain: the history is complete.
	if _, data := h.last(); data["message"] != "noisy" || data["level"] != "debug" {
		t.Fatalf("event %v", data)
	}
}

func TestRecordMetric(t *testing.T) {
	tests := map[string]struct {
		name    string
		value   float64
		wantErr string
	}{
		"simple":              {name: "requests_processed", value: 1},
		"digits":              {name: "http_requests_2xx", value: 42.5},
		"counter":             {name: "requests_total", value: 2},
		"counter at zero":     {name: "requests_total", value: 0},
		"leading underscore":  {name: "_private", value: -3},
		"colon":               {name: "http:requests", value: 1, wantErr: `metric name "http:requests" contains ':', which Prometheus keeps for recording rules: use [a-zA-Z_][a-zA-Z0-9_]*`},
		"leading colon":       {name: ":rule", value: 0, wantErr: `contains ':'`},
		"negative counter":    {name: "requests_total", value: -1, wantErr: `metric "requests_total" is a counter (its name ends in _total): record increments of 0 or more, not -1`},
		"reserved suffix":     {name: "x_recorded", value: 1, wantErr: `metric name "x_recorded" ends in "_recorded", which the host uses`},
		"reserved sum":        {name: "x_recorded_sum", value: 1, wantErr: `ends in "_recorded_sum"`},
		"reserved count":      {name: "x_recorded_count", value: 1, wantErr: `ends in "_recorded_count"`},
		"zero":                {name: "z", value: 0},
		"huge finite":         {name: "big", value: math.MaxFloat64},
		"max length":          {name: strings.Repeat("m", 200), value: 1},
		"empty":               {name: "", value: 1, wantErr: "metric name is empty: use [a-zA-Z_][a-zA-Z0-9_]*"},
		"leading digit":       {name: "1abc", value: 1, wantErr: `metric name "1abc" is not a Prometheus metric name: use [a-zA-Z_][a-zA-Z0-9_]*`},
		"dash":                {name: "a-b", value: 1, wantErr: `metric name "a-b" is not a Prometheus metric name`},
		"space":               {name: "a b", value: 1, wantErr: `metric name "a b" is not a Prometheus metric name`},
		"reserved prefix":     {name: "__name__", value: 1, wantErr: `metric name "__name__" starts with "__", which Prometheus reserves`},
		"non-ASCII":           {name: "café", value: 1, wantErr: `is not a Prometheus metric name`},
		"invalid UTF-8":       {name: "a\xffb", value: 1, wantErr: "metric name is not valid UTF-8"},
		"too long":            {name: strings.Repeat("m", 201), value: 1, wantErr: "metric name is 201 bytes: the limit is 200"},
		"NaN":                 {name: "ok_name", value: math.NaN(), wantErr: "metric value is NaN: use a finite number"},
		"+Inf":                {name: "ok_name", value: math.Inf(1), wantErr: "metric value is infinite: use a finite number"},
		"-Inf":                {name: "ok_name", value: math.Inf(-1), wantErr: "metric value is infinite: use a finite number"},
		"NaN with a bad name": {name: "1x", value: math.NaN(), wantErr: `metric name "1x" is not a Prometheus metric name`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "guest.wasm")
			p, n := h.writeStr(argArea, tc.name)
			h.mustCall("call-record-metric", p, n, f64bits(tc.value), retArea)
			gotErr, isErr := h.resultErr()
			e, data := h.last()
			if e.Kind != chain.KindMetric || e.Op != abi.RecordMetric.Name {
				t.Fatalf("event %s %s", e.Kind, e.Op)
			}
			if tc.wantErr != "" {
				if !isErr || !strings.HasPrefix(gotErr, tc.wantErr) && !strings.Contains(gotErr, tc.wantErr) {
					t.Fatalf("result err %q (isErr %v), want %q", gotErr, isErr, tc.wantErr)
				}
				if data["error"] != gotErr {
					t.Fatalf("event %s", e.Data)
				}
				if n := len(h.actor.metricNames); n != 0 {
					t.Fatalf("refused metric counted: %d names", n)
				}
				return
			}
			if isErr {
				t.Fatalf("unexpected err %q", gotErr)
			}
			if data["name"] != tc.name || data["value"] != tc.value {
				t.Fatalf("event %s", e.Data)
			}
		})
	}
}

func TestRecordMetricCapCountsDistinctNames(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxMetricNames = 3
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) { o.Config = cfg })
	record := func(name string) (string, bool) {
		p, n := h.writeStr(argArea, name)
		h.mustCall("call-record-metric", p, n, f64bits(1), retArea)
		return h.resultErr()
	}
	for i := 0; i < 5; i++ { // repeats of known names never count twice
		for _, n := range []string{"a", "b", "c"} {
			if msg, isErr := record(n); isErr {
				t.Fatalf("%s: %s", n, msg)
			}
		}
	}
	msg, isErr := record("d")
	want := `metric "d" would be distinct name number 4: the limit is 3 (maxMetricNames)`
	if !isErr || msg != want {
		t.Fatalf("got %q, want %q", msg, want)
	}
	if msg, isErr := record("a"); isErr {
		t.Fatalf("a known name after the cap: %s", msg)
	}
}

func TestRecordEvent(t *testing.T) {
	tests := map[string]struct {
		typ     string
		dataLen int
		wantErr string
	}{
		"small":              {typ: "user_login", dataLen: 14},
		"empty data":         {typ: "ping", dataLen: 0},
		"64 KiB":             {typ: "bulk", dataLen: 64 << 10},
		"1 MiB is the limit": {typ: "bulk", dataLen: limits.DefaultMaxEventBytes},
		"over 1 MiB":         {typ: "bulk", dataLen: limits.DefaultMaxEventBytes + 1, wantErr: "event data is 1048577 bytes: the limit is 1048576 (maxEventBytes)"},
		"4 MiB":              {typ: "bulk", dataLen: 4 << 20, wantErr: "event data is 4194304 bytes: the limit is 1048576 (maxEventBytes)"},
		"empty type":         {typ: "", dataLen: 3, wantErr: `event type is empty: give a non-empty name, e.g. "user_login"`},
		"type at the limit":  {typ: strings.Repeat("t", limits.DefaultMaxEventTypeBytes), dataLen: 1},
		"long type":          {typ: strings.Repeat("t", limits.DefaultMaxEventTypeBytes+1), dataLen: 1, wantErr: "event type is 257 bytes: the limit is 256 (maxEventTypeBytes)"},
		"invalid UTF-8 type": {typ: "bad\xfe", dataLen: 1, wantErr: "event type is not valid UTF-8"},
		"unicode type":       {typ: "achat_réussi", dataLen: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "guest.wasm")
			const dataAt = 65536
			if pages := (dataAt + tc.dataLen + 65535) / 65536; pages > 1 {
				if _, ok := h.mod.Memory().Grow(uint32(pages - 1)); !ok {
					t.Fatal("growing memory")
				}
			}
			data := make([]byte, tc.dataLen)
			for i := range data {
				data[i] = byte(i * 7)
			}
			h.write(dataAt, data)
			tp, tl := h.writeStr(argArea, tc.typ)
			h.mustCall("call-record-event", tp, tl, dataAt, uint64(len(data)), retArea)
			gotErr, isErr := h.resultErr()
			e, fields := h.last()
			if e.Kind != chain.KindCustom || e.Op != abi.RecordEvent.Name {
				t.Fatalf("event %s %s", e.Kind, e.Op)
			}
			if tc.wantErr != "" {
				if !isErr || gotErr != tc.wantErr {
					t.Fatalf("result err %q (isErr %v), want %q", gotErr, isErr, tc.wantErr)
				}
				if fields["error"] != gotErr || fields["dataBytes"] != float64(tc.dataLen) {
					t.Fatalf("event %.200s", e.Data)
				}
				if _, ok := fields["data"]; ok {
					t.Fatal("refused data was recorded")
				}
				return
			}
			if isErr {
				t.Fatalf("unexpected err %q", gotErr)
			}
			var decoded struct {
				Type string `json:"type"`
				Data []byte `json:"data"` // encoding/json reads base64
			}
			if err := jsonUnmarshal(e.Data, &decoded); err != nil {
				t.Fatal(err)
			}
			if decoded.Type != tc.typ || !bytes.Equal(decoded.Data, data) {
				t.Fatalf("event type %q, %d data bytes; want %q, %d", decoded.Type, len(decoded.Data), tc.typ, len(data))
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	if _, _, requested := h.actor.Shutdown(); requested {
		t.Fatal("requested before any call")
	}
	p, n := h.writeStr(argArea, "final words")
	h.mustCall("call-shutdown", 1, p, n, retArea)
	if msg, isErr := h.resultErr(); isErr {
		t.Fatal(msg)
	}
	h.write(argArea, []byte("XXXXX")) // the actor's copy must not alias guest memory
	data, hasData, requested := h.actor.Shutdown()
	if !requested || !hasData || string(data) != "final words" {
		t.Fatalf("Shutdown() = %q, %v, %v", data, hasData, requested)
	}
	e, fields := h.last()
	if e.Kind != chain.KindRuntimeOperation || e.Op != abi.Shutdown.Name || fields["data"] != "ZmluYWwgd29yZHM=" {
		t.Fatalf("event %s %s %s", e.Kind, e.Op, e.Data)
	}
	h.mustCall("call-shutdown", 0, 0, 0, retArea)
	if msg, isErr := h.resultErr(); !isErr || msg != "shutdown already requested" {
		t.Fatalf("second shutdown: %q, %v", msg, isErr)
	}
	if _, fields := h.last(); fields["error"] != "shutdown already requested" {
		t.Fatalf("second shutdown event %v", fields)
	}
	if data, _, _ := h.actor.Shutdown(); string(data) != "final words" {
		t.Fatal("the second shutdown changed the data")
	}
}

func TestShutdownNone(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	// ptr and len of a none are ignored, however wild.
	h.mustCall("call-shutdown", 0, 0xFFFFFFFF, 0xFFFFFFFF, retArea)
	if msg, isErr := h.resultErr(); isErr {
		t.Fatal(msg)
	}
	if data, hasData, requested := h.actor.Shutdown(); !requested || hasData || data != nil {
		t.Fatalf("Shutdown() = %q, %v, %v", data, hasData, requested)
	}
	if e, fields := h.last(); fields["data"] != nil || !bytes.Contains(e.Data, []byte(`"data":null`)) {
		t.Fatalf("event %s", e.Data)
	}
}

func TestShutdownDataLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxEventBytes = 10
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) { o.Config = cfg })
	p, n := h.writeStr(argArea, "eleven byte")
	h.mustCall("call-shutdown", 1, p, n, retArea)
	if msg, isErr := h.resultErr(); !isErr || msg != "shutdown data is 11 bytes: the limit is 10 (maxEventBytes)" {
		t.Fatalf("got %q, %v", msg, isErr)
	}
	if _, _, requested := h.actor.Shutdown(); requested {
		t.Fatal("a refused shutdown was requested")
	}
}

func TestGetSystemInfoLayout(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	h.write(retArea, bytes.Repeat([]byte{0xEE}, int(abi.SystemInfo.Size)))
	h.mustCall("call-get-system-info", retArea)
	got := SystemInfo{
		Hostname: h.str(retArea + 0), OSType: h.str(retArea + 8), OSRelease: h.str(retArea + 16),
		CPUCount: h.u32(retArea + 24), MemoryTotal: h.u64(retArea + 32),
		MemoryAvailable: h.u64(retArea + 40), Uptime: h.u64(retArea + 48),
	}
	if got != testSysInfo {
		t.Fatalf("guest read %+v, want %+v", got, testSysInfo)
	}
	if pad := h.u32(retArea + 28); pad != 0xEEEEEEEE {
		t.Fatalf("padding bytes 28..31 written: %#x", pad)
	}
	e, data := h.last()
	if e.Kind != chain.KindRuntimeOperation || e.Op != abi.GetSystemInfo.Name ||
		data["hostname"] != "node-1" || data["cpuCount"] != float64(8) ||
		data["memoryTotal"] != float64(16<<30) || data["uptime"] != float64(123456) {
		t.Fatalf("event %s", e.Data)
	}
	if _, ok := data["error"]; ok {
		t.Fatal("error recorded")
	}
}

func TestGetSystemInfoSourceErrorIsBestEffort(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	h.sys.info = SystemInfo{OSType: "linux", CPUCount: 2}
	h.sys.err = errors.New("memory: couldn't read /host/proc/meminfo")
	h.mustCall("call-get-system-info", retArea)
	if h.str(retArea+8) != "linux" || h.u32(retArea+24) != 2 || h.u64(retArea+32) != 0 || h.str(retArea) != "" {
		t.Fatal("best-effort fields not served")
	}
	if _, data := h.last(); data["error"] != "memory: couldn't read /host/proc/meminfo" {
		t.Fatalf("error not recorded: %v", data)
	}
}

// The scenario guest does what the seed's examples do, consuming the host's
// results in wasm.
func TestScenario(t *testing.T) {
	h := newHarness(t, "scenario.wasm")
	res := h.mustCall("run")
	if res[0] != 0 {
		t.Fatalf("scenario failed at step %d", res[0])
	}
	var ops []string
	for _, e := range h.events() {
		ops = append(ops, string(e.Kind)+"/"+e.Op)
	}
	want := []string{
		"RuntimeOperation/get-env", "LogEvent/log", "RuntimeOperation/get-env",
		"RuntimeOperation/get-actor-name", "LogEvent/log", "MetricEvent/record-metric",
		"CustomEvent/record-event", "RuntimeOperation/get-system-info",
		"MetricEvent/record-metric", "MetricEvent/record-metric", "LogEvent/log", "LogEvent/log",
		"RuntimeOperation/get-current-time", "RuntimeOperation/shutdown", "RuntimeOperation/shutdown",
	}
	if strings.Join(ops, " ") != strings.Join(want, " ") {
		t.Fatalf("chain\n got %v\nwant %v", ops, want)
	}
	var msgs []string
	for _, l := range h.logs.all() {
		msgs = append(msgs, l["msg"].(string))
	}
	wantMsgs := []string{"hi there", "hello", `unknown log level "verbose": use one of debug, info, warn, error`}
	if strings.Join(msgs, "|") != strings.Join(wantMsgs, "|") {
		t.Fatalf("log lines %q, want %q", msgs, wantMsgs)
	}
	if data, _, requested := h.actor.Shutdown(); !requested || string(data) != "bye" {
		t.Fatalf("shutdown %q %v", data, requested)
	}
}

func TestNoActorInContextTraps(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	for _, export := range []string{"call-get-current-time", "call-get-actor-id"} {
		fn := h.mod.ExportedFunction(export)
		params := []uint64{retArea}
		if export == "call-get-current-time" {
			params = nil
		}
		_, err := fn.Call(context.Background(), params...)
		var te *TrapError
		if !errors.As(err, &te) || !strings.Contains(te.Reason, "no actor is bound") {
			t.Fatalf("%s: %v", export, err)
		}
	}
	if n := len(h.events()); n != 0 {
		t.Fatalf("%d events recorded without an actor", n)
	}
}

func TestGuestWithoutMemory(t *testing.T) {
	h := newHarness(t, "nomemory.wasm")
	if res := h.mustCall("call-get-current-time"); res[0] != uint64(fixedTime.UnixMilli()) {
		t.Fatal("get-current-time needs no memory and must work")
	}
	h.trapCall(`the actor exports no "memory"`, "call-get-actor-id", 16)
}

func TestGuestWithoutRealloc(t *testing.T) {
	h := newHarness(t, "norealloc.wasm")
	if res := h.mustCall("log-hello"); res[0] != 0 {
		t.Fatal("log returning ok needs no allocator and must work")
	}
	h.trapCall("the actor exports no cabi_realloc", "call-get-actor-id", 16)
}

// failingRecorder is a chain that can't be written.
type failingRecorder struct{}

func (failingRecorder) Append(chain.Kind, string, []byte) (chain.Hash, error) {
	return chain.Hash{}, chain.ErrClosed
}

func TestChainFailureTraps(t *testing.T) {
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) { o.Chain = failingRecorder{} })
	te := h.trapCall("recording the call in the actor's chain", "call-get-current-time")
	if !errors.Is(te, chain.ErrClosed) {
		t.Fatalf("trap %v does not wrap the chain's error", te)
	}
}

func TestWithRuntimeInterpreter(t *testing.T) {
	// The engine may pick the interpreter (e.g. on platforms without the
	// compiler); the host module must behave the same.
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	t.Cleanup(func() { r.Close(ctx) })
	if _, err := Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	c := chain.NewMemory(chain.Options{})
	a, err := NewActor(ActorOptions{ID: "id-1", Name: "n", Chain: c, SystemInfo: &fakeSys{info: testSysInfo}})
	if err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, loadWasm(t, "scenario.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = mod.ExportedFunction("run").Call(WithActor(ctx, a))
	// GREETING is not declared for this actor: step 1 fails, after recording.
	if err != nil {
		t.Fatal(err)
	}
	if _, n := c.Head(); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

func TestInstantiateTwiceFails(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	if _, err := Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := Instantiate(ctx, r); err == nil || !strings.Contains(err.Error(), ModuleName) {
		t.Fatalf("second Instantiate: %v", err)
	}
}

// One host module serves every actor of a runtime: each call is served and
// recorded for the actor bound to its context, also when actors run at the
// same time on different goroutines.
func TestActorsShareTheHostModule(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	if _, err := Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	compiled, err := r.CompileModule(ctx, loadWasm(t, "guest.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	const actors, calls = 4, 200
	type run struct {
		a   *Actor
		c   *chain.Chain
		mod api.Module
		err error
	}
	runs := make([]*run, actors)
	for i := range runs {
		c := chain.NewMemory(chain.Options{})
		a, err := NewActor(ActorOptions{ID: "actor-" + string(rune('a'+i)), Name: "n", Chain: c, SystemInfo: &fakeSys{}})
		if err != nil {
			t.Fatal(err)
		}
		mod, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		runs[i] = &run{a: a, c: c, mod: mod}
	}
	done := make(chan struct{})
	for _, rn := range runs {
		go func() {
			defer func() { done <- struct{}{} }()
			actx := WithActor(ctx, rn.a)
			fn := rn.mod.ExportedFunction("call-get-actor-id")
			for j := 0; j < calls; j++ {
				if _, err := fn.Call(actx, retArea); err != nil {
					rn.err = err
					return
				}
			}
		}()
	}
	for range runs {
		<-done
	}
	for _, rn := range runs {
		if rn.err != nil {
			t.Fatal(rn.err)
		}
		if _, n := rn.c.Head(); n != calls {
			t.Fatalf("%s: %d events, want %d", rn.a.ID(), n, calls)
		}
		_ = rn.c.Events(func(e chain.Event) error {
			if !bytes.Contains(e.Data, []byte(rn.a.ID())) {
				t.Fatalf("%s's chain holds %s", rn.a.ID(), e.Data)
			}
			return nil
		})
	}
}

// The largest event the config allows still fits in one chain event once
// base64-encoded.
func TestRecordEventAtTheConfigCeiling(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxEventBytes = limits.MaxEventBytesLimit
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if encoded := (limits.MaxEventBytesLimit+2)/3*4 + 100; encoded > chain.MaxDataSize {
		t.Fatalf("base64 of %d bytes is %d, over the chain's %d", limits.MaxEventBytesLimit, encoded, chain.MaxDataSize)
	}
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) { o.Config = cfg })
	if _, ok := h.mod.Memory().Grow(limits.MaxEventBytesLimit/65536 + 1); !ok {
		t.Fatal("growing memory")
	}
	tp, tl := h.writeStr(argArea, "big")
	h.mustCall("call-record-event", tp, tl, 65536, limits.MaxEventBytesLimit, retArea)
	if msg, isErr := h.resultErr(); isErr {
		t.Fatal(msg)
	}
}

// A large event must not leave a large buffer on an idle actor.
func TestLargeEventBufferReleased(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	if _, ok := h.mod.Memory().Grow(4); !ok {
		t.Fatal("growing memory")
	}
	tp, tl := h.writeStr(argArea, "bulk")
	h.mustCall("call-record-event", tp, tl, 65536, 200<<10, retArea)
	if msg, isErr := h.resultErr(); isErr {
		t.Fatal(msg)
	}
	if n := fieldsCap(&h.actor.fields); n > maxKeptEventBuffer {
		t.Fatalf("the actor keeps a %d-byte event buffer", n)
	}
	// A small one keeps its buffer, so the next call needn't allocate one.
	h.mustCall("call-record-event", tp, tl, 65536, 100, retArea)
	if n := fieldsCap(&h.actor.fields); n == 0 {
		t.Fatal("a small event's buffer was dropped")
	}
}

// fieldsCap is the capacity of a chain.Fields' buffer (an unexported
// field: reflect may read its capacity).
func fieldsCap(f *eventFields) int {
	return reflect.ValueOf(f).Elem().Field(0).Cap()
}

// TestInstantiateDefinesTheABITable: the host module defines exactly the
// table's functions of theater:simple/runtime, with the table's core types
// (internal/abi's own test holds the table to the WIT).
func TestInstantiateDefinesTheABITable(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	m, err := Instantiate(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != abi.RuntimeModule {
		t.Fatalf("module name %q", m.Name())
	}
	defs := m.ExportedFunctionDefinitions()
	table := abi.ImportsOf(abi.RuntimeModule)
	if len(defs) != len(table) || len(table) != 10 {
		t.Fatalf("%d functions defined, %d in the table, want 10", len(defs), len(table))
	}
	for _, f := range table {
		d, ok := defs[f.Name]
		if !ok {
			t.Errorf("no function %q", f.Name)
			continue
		}
		if !f.Matches(d) || !slices.Equal(d.ParamNames(), f.ParamNames) {
			t.Errorf("%s: %s %v, the table says %s %v", f.Name, abi.SignatureOf(d), d.ParamNames(), f.Signature, f.ParamNames)
		}
	}
}
