package host

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// logChain is a chain file with log events at known times: event i is
// logged at base+i seconds, at levels cycling debug, info, warn, error,
// with a non-log event between each two.
type logChain struct {
	c    *chain.Chain
	base time.Time
	now  atomic.Int64
	n    int
}

func newLogChain(t *testing.T) *logChain {
	t.Helper()
	lc := &logChain{base: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	lc.now.Store(lc.base.UnixNano())
	c, _, err := chain.Open(filepath.Join(t.TempDir(), chain.FileName), chain.Options{Now: func() time.Time { return time.Unix(0, lc.now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	lc.c = c
	if _, err := c.Append(chain.KindActorStart, "start", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	return lc
}

var cycle = []string{"debug", "info", "warn", "error"}

// log appends n log lines "line <i>" and a custom event after each.
func (lc *logChain) log(t *testing.T, n int) {
	t.Helper()
	for range n {
		i := lc.n
		lc.n++
		lc.now.Store(lc.base.Add(time.Duration(i) * time.Second).UnixNano())
		data, _ := json.Marshal(map[string]string{"level": cycle[i%4], "message": fmt.Sprintf("line %d", i)})
		if _, err := lc.c.Append(chain.KindLog, "log", data); err != nil {
			t.Fatal(err)
		}
		if _, err := lc.c.Append(chain.KindCustom, "record-event", []byte(`{"type":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
}

// serveLogs serves a logStream of lc's chain with q; ended is what the
// stream's ended returns.
func serveLogs(t *testing.T, lc *logChain, ended *atomic.Value) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := msgwire.ParseLogQuery(r.URL.RawQuery)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s := &logStream{cur: newLogCursor(lc.c), q: q, actorID: "id-1", epoch: 3, poll: 5 * time.Millisecond,
			ended: func() string { v, _ := ended.Load().(string); return v }}
		_ = s.serve(r.Context(), w)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func messages(recs []msgwire.LogRecord) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Message)
	}
	return out
}

func lines(from, to int, keep func(int) bool) []string {
	var out []string
	for i := from; i < to; i++ {
		if keep == nil || keep(i) {
			out = append(out, fmt.Sprintf("line %d", i))
		}
	}
	return out
}

func getLogs(t *testing.T, url string) []msgwire.LogRecord {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var out []msgwire.LogRecord
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var r msgwire.LogRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func TestLogStreamFilters(t *testing.T) {
	lc := newLogChain(t)
	lc.log(t, 40)
	var ended atomic.Value
	srv := serveLogs(t, lc, &ended)
	// Event seqs: 0 the start, then line i at 1+2i.
	tests := map[string]struct {
		query string
		want  []string
	}{
		"all":             {"", lines(0, 40, nil)},
		"level warn":      {"level=warn", lines(0, 40, func(i int) bool { return i%4 >= 2 })},
		"level error":     {"level=error", lines(0, 40, func(i int) bool { return i%4 == 3 })},
		"tail":            {"tail=3", lines(37, 40, nil)},
		"tail over all":   {"tail=100", lines(0, 40, nil)},
		"tail and level":  {"tail=2&level=error", []string{"line 35", "line 39"}},
		"after":           {"after=" + fmt.Sprint(1+2*37), lines(38, 40, nil)},
		"after the end":   {"after=1000", nil},
		"since":           {"since=" + lc.base.Add(30*time.Second).Format(time.RFC3339), lines(30, 40, nil)},
		"since and after": {"since=" + lc.base.Add(30*time.Second).Format(time.RFC3339) + "&after=" + fmt.Sprint(1+2*35), lines(36, 40, nil)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := getLogs(t, srv.URL+"/?"+tc.query)
			if !slices.Equal(messages(got), tc.want) {
				t.Fatalf("got %q, want %q", messages(got), tc.want)
			}
			for _, r := range got {
				var i int
				_, _ = fmt.Sscanf(r.Message, "line %d", &i)
				if r.Seq != uint64(1+2*i) || r.Level != cycle[i%4] || !r.Time.Equal(lc.base.Add(time.Duration(i)*time.Second)) || r.ActorID != "id-1" || r.Epoch != 3 {
					t.Fatalf("record %+v", r)
				}
			}
		})
	}
}

// TestLogStreamFollow: a followed stream gets the lines logged after it
// began, across a rotation of the chain file, each once, and ends with
// EndOfStream when the run ends.
func TestLogStreamFollow(t *testing.T) {
	lc := newLogChain(t)
	lc.log(t, 5)
	var ended atomic.Value
	srv := serveLogs(t, lc, &ended)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/?follow=1&tail=2", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	next := func() msgwire.LogRecord {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("the stream ended: %v", sc.Err())
		}
		var r msgwire.LogRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	var got []string
	for range 2 {
		got = append(got, next().Message)
	}
	lc.log(t, 3)
	for range 3 {
		got = append(got, next().Message)
	}
	// A rotation: chain.log is renamed, the chain goes on in a new file.
	if _, err := lc.c.Rotate(lc.c.Path()+".rotated", []byte(`{"rotated":true}`)); err != nil {
		t.Fatal(err)
	}
	lc.log(t, 3)
	for range 3 {
		got = append(got, next().Message)
	}
	if want := append(lines(3, 5, nil), lines(5, 11, nil)...); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	ended.Store("the run ended")
	last := next()
	// The start, 11 lines and 11 custom events, the rotation's SegmentStart.
	if last.EndOfStream != "the run ended" || last.Seq != 23 {
		t.Fatalf("last line %+v, want the end of the stream at seq 23", last)
	}
	if sc.Scan() {
		t.Fatalf("a line after the end: %s", sc.Text())
	}
}

// TestLogStreamClientGone: the handler returns once the client hangs up.
func TestLogStreamClientGone(t *testing.T) {
	lc := newLogChain(t)
	lc.log(t, 1)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		s := &logStream{cur: newLogCursor(lc.c), q: msgwire.LogQuery{Follow: true}, poll: 5 * time.Millisecond, ended: func() string { return "" }}
		_ = s.serve(r.Context(), w)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.Contains(sc.Text(), "line 0") {
		t.Fatalf("first line %q", sc.Text())
	}
	cancel()
	_ = resp.Body.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after the client went away")
	}
}

// TestLogRecordOfBadEvent: whatever a LogEvent's data holds, its record
// is bounded and says what it can.
func TestLogRecordOfBadEvent(t *testing.T) {
	for name, tc := range map[string]struct {
		data string
		want msgwire.LogRecord
	}{
		"refused":   {`{"level":"info","messageBytes":99999,"error":"too long"}`, msgwire.LogRecord{Level: "info", Error: "too long"}},
		"wasi":      {`{"level":"warn","message":"m","source":"wasi"}`, msgwire.LogRecord{Level: "warn", Message: "m", Source: "wasi"}},
		"not json":  {`nope`, msgwire.LogRecord{Level: "error"}},
		"long":      {`{"level":"info","message":"` + strings.Repeat("é", msgwire.MaxLogMessageBytes) + `"}`, msgwire.LogRecord{Level: "info", Truncated: true}},
		"bad level": {`{"level":"LOUD\u0000","message":"m"}`, msgwire.LogRecord{Level: "LOUD\x00", Message: "m"}},
	} {
		t.Run(name, func(t *testing.T) {
			rec, ok := logRecord(&chain.Event{Kind: chain.KindLog, Seq: 7, Data: []byte(tc.data)}, "a", 1)
			if !ok {
				t.Fatal("not a record")
			}
			if len(rec.Message) > msgwire.MaxLogMessageBytes {
				t.Fatalf("message of %d bytes", len(rec.Message))
			}
			if rec.Level != tc.want.Level || rec.Source != tc.want.Source || rec.Truncated != tc.want.Truncated ||
				(tc.want.Message != "" && rec.Message != tc.want.Message) || (tc.want.Error != "" && rec.Error != tc.want.Error) {
				t.Fatalf("got %+v, want %+v", rec, tc.want)
			}
			if name == "not json" && rec.Error == "" {
				t.Fatal("no error for an unreadable event")
			}
		})
	}
	if _, ok := logRecord(&chain.Event{Kind: chain.KindCustom}, "a", 1); ok {
		t.Fatal("a custom event is no log record")
	}
}
