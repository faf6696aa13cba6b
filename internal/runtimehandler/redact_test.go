package runtimehandler

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
)

// testSecrets are the secret-sourced variables of TestSecretsNeverRecorded:
// a plain one, one with the trailing newline of a Secret made from a file,
// and one JSON must escape (so a check of the raw chain bytes alone would
// miss it: the decoded events are checked too).
var testSecrets = map[string]string{
	"DB_PASSWORD": "hunter2",
	"API_TOKEN":   "tok-9f8e7d6c5b4a\n",
	"QUOTED":      `pa"ss\wörd`,
}

// secretForms are what must never show: each value as served, trimmed.
func secretForms() []string {
	var out []string
	for _, v := range testSecrets {
		out = append(out, strings.TrimSpace(v))
	}
	return out
}

// leak returns the secret form found in v (a decoded JSON value), looking
// into base64 strings too (event and shutdown data are base64), or "".
func leak(v any) string { return leakOf(v, secretForms()) }

func leakOf(v any, forms []string) string {
	switch x := v.(type) {
	case string:
		texts := []string{x}
		if b, err := base64.StdEncoding.DecodeString(x); err == nil {
			texts = append(texts, string(b))
		}
		for _, s := range texts {
			for _, f := range forms {
				if strings.Contains(s, f) {
					return f
				}
			}
		}
	case map[string]any:
		for k, e := range x {
			if f := leakOf(k, forms); f != "" {
				return f
			}
			if f := leakOf(e, forms); f != "" {
				return f
			}
		}
	case []any:
		for _, e := range x {
			if f := leakOf(e, forms); f != "" {
				return f
			}
		}
	}
	return ""
}

// TestSecretsNeverRecorded reads secrets through get-env and then hands
// them back in every way a guest can: log message and level, record-event
// type and data, a metric name, a get-env name, WASI output and shutdown
// data. Neither the chain file (raw bytes and decoded events) nor the
// host's log may hold one; what the guest said around them survives.
func TestSecretsNeverRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain")
	fileChain, _, err := chain.Open(path, chain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fileChain.Close() })
	env := MapEnv{"GREETING": {Value: "hi there"}}
	for k, v := range testSecrets {
		env[k] = EnvValue{Value: v, Secret: true}
	}
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) { o.Chain, o.Env = fileChain, env })
	h.chain = fileChain

	resultOK := func(what string) {
		t.Helper()
		if msg, isErr := h.resultErr(); isErr {
			t.Fatalf("%s: %s", what, msg)
		}
	}
	for name := range testSecrets {
		p, n := h.writeStr(argArea, name)
		h.mustCall("call-get-env", p, n, retArea)
		if h.u8(retArea) != 1 || h.str(retArea+4) != testSecrets[name] {
			t.Fatalf("get-env %s did not serve the value", name)
		}
	}

	// log: the message, and a level that is a secret (refused, echoed).
	lp, ll := h.writeStr(argArea, "info")
	mp, ml := h.writeStr(argArea2, "connecting with hunter2 / tok-9f8e7d6c5b4a / "+testSecrets["QUOTED"])
	h.mustCall("call-log", lp, ll, mp, ml, retArea)
	resultOK("log")
	if _, f := h.last(); f["message"] != "connecting with [redacted] / [redacted] / [redacted]" {
		t.Errorf("log event %v", f)
	}
	lp, ll = h.writeStr(argArea, "hunter2")
	h.mustCall("call-log", lp, ll, mp, ml, retArea)
	if msg, isErr := h.resultErr(); !isErr || msg != `unknown log level "[redacted]": use one of debug, info, warn, error` {
		t.Errorf("log with a secret level: %q, %v", msg, isErr)
	}

	// record-event: type and data.
	tp, tl := h.writeStr(argArea, "seen-hunter2")
	dp, dl := h.writeStr(argArea2, "user=bob pw=hunter2 ok")
	h.mustCall("call-record-event", tp, tl, dp, dl, retArea)
	resultOK("record-event")
	if _, f := h.last(); f["type"] != "seen-[redacted]" || f["data"] != base64.StdEncoding.EncodeToString([]byte("user=bob pw=[redacted] ok")) {
		t.Errorf("custom event %v", f)
	}

	// record-metric: refused without echoing the name, even a name that is
	// wrong in other ways too.
	for _, name := range []string{"hunter2_total", "x-hunter2"} {
		np, nl := h.writeStr(argArea, name)
		h.mustCall("call-record-metric", np, nl, f64bits(1), retArea)
		msg, isErr := h.resultErr()
		if !isErr || !strings.Contains(msg, "contains the value of a secret") || strings.Contains(msg, "hunter2") {
			t.Errorf("metric %q: %q, %v", name, msg, isErr)
		}
		if _, f := h.last(); f["nameBytes"] != float64(len(name)) || f["name"] != nil {
			t.Errorf("metric event %v", f)
		}
	}

	// get-env of a secret's value as a name.
	p, n := h.writeStr(argArea, "hunter2")
	h.mustCall("call-get-env", p, n, retArea)
	if _, f := h.last(); f["name"] != Redacted {
		t.Errorf("get-env event %v", f)
	}

	// WASI output, with a last line the actor's Close flushes.
	w := h.actor.LogWriter("info")
	if _, err := w.Write([]byte("token=tok-9f8e7d6c5b4a\nlast words: hunter2")); err != nil {
		t.Fatal(err)
	}

	// shutdown data: recorded and handed to the engine scrubbed.
	sp, sl := h.writeStr(argArea, "bye hunter2")
	h.mustCall("call-shutdown", 1, sp, sl, retArea)
	resultOK("shutdown")
	if data, _, _ := h.actor.Shutdown(); string(data) != "bye [redacted]" {
		t.Errorf("Shutdown() data %q", data)
	}

	h.actor.Close()
	var events int
	if err := fileChain.Events(func(e chain.Event) error {
		events++
		var m map[string]any
		if err := json.Unmarshal(e.Data, &m); err != nil {
			t.Fatalf("event data %q: %v", e.Data, err)
		}
		if f := leak(m); f != "" {
			t.Errorf("%s event holds %q: %s", e.Op, f, e.Data)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := len(testSecrets) + 2 + 1 + 2 + 1 + 2 + 1; events != want {
		t.Errorf("%d events, want %d", events, want)
	}
	if err := fileChain.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range secretForms() {
		if bytes.Contains(raw, []byte(f)) {
			t.Errorf("the chain file holds %q", f)
		}
	}
	if !bytes.Contains(raw, []byte("token=[redacted]")) || !bytes.Contains(raw, []byte("last words: [redacted]")) {
		t.Error("the WASI lines are not in the chain, scrubbed")
	}
	lines := h.logs.all()
	if len(lines) != 3 { // the log call and two WASI lines
		t.Errorf("%d log lines, want 3", len(lines))
	}
	for _, l := range lines {
		if f := leak(l); f != "" {
			t.Errorf("log line holds %q: %v", f, l)
		}
	}
}

// TestRedactedDataOverTheLimitIsRefused: a replaced value grows to the
// marker's length, so data within maxEventBytes may exceed it once
// scrubbed; it is refused rather than recorded over the limit.
func TestRedactedDataOverTheLimitIsRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxEventBytes = 64
	h := newHarness(t, "guest.wasm", func(o *ActorOptions) { o.Config = cfg })
	p, n := h.writeStr(argArea, "DB_PASSWORD")
	h.mustCall("call-get-env", p, n, retArea)
	data := strings.Repeat("hunter2 ", 8) // 64 bytes, 88 once scrubbed
	const want = `data is 88 bytes once secret values are replaced with "[redacted]": the limit is 64 (maxEventBytes)`
	tp, tl := h.writeStr(argArea, "t")
	dp, dl := h.writeStr(argArea2, data)
	h.mustCall("call-record-event", tp, tl, dp, dl, retArea)
	if msg, isErr := h.resultErr(); !isErr || msg != "event "+want {
		t.Errorf("record-event: %q, %v", msg, isErr)
	}
	h.mustCall("call-shutdown", 1, dp, dl, retArea)
	if msg, isErr := h.resultErr(); !isErr || msg != "shutdown "+want {
		t.Errorf("shutdown: %q, %v", msg, isErr)
	}
	if _, _, requested := h.actor.Shutdown(); requested {
		t.Error("a refused shutdown was requested")
	}
	dp, dl = h.writeStr(argArea2, data[:56]) // 7 values: 77 bytes once scrubbed... still over
	h.mustCall("call-record-event", tp, tl, dp, dl, retArea)
	if _, isErr := h.resultErr(); !isErr {
		t.Error("77 bytes accepted")
	}
	dp, dl = h.writeStr(argArea2, data[:40]) // 5 values: 55 bytes once scrubbed
	h.mustCall("call-record-event", tp, tl, dp, dl, retArea)
	if msg, isErr := h.resultErr(); isErr {
		t.Errorf("55 bytes refused: %s", msg)
	}
}

// TestEchoedLevelScrubbedBeforeItIsCut: an error quotes 64 bytes of a bad
// level; scrubbing after the cut would let the start of a secret that
// straddles it through ("hunt").
func TestEchoedLevelScrubbedBeforeItIsCut(t *testing.T) {
	h := newHarness(t, "guest.wasm")
	p, n := h.writeStr(argArea, "DB_PASSWORD")
	h.mustCall("call-get-env", p, n, retArea)
	level := strings.Repeat("x", 60) + "hunter2" + strings.Repeat("y", 20000)
	lp, ll := h.writeStr(argArea, level)
	mp, ml := h.writeStr(512, "m") // below the level
	h.mustCall("call-log", lp, ll, mp, ml, retArea)
	want := `unknown log level "` + strings.Repeat("x", 60) + `[red"...: use one of debug, info, warn, error`
	if msg, isErr := h.resultErr(); !isErr || msg != want {
		t.Fatalf("got %q, %v; want %q", msg, isErr, want)
	}
	if _, f := h.last(); f["level"] != strings.Repeat("x", 60)+"[red..." {
		t.Fatalf("event %v", f)
	}
}
