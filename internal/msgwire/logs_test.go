package msgwire

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseLogQuery(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := map[string]struct {
		raw     string
		want    LogQuery
		wantErr string
	}{
		"empty":            {raw: "", want: LogQuery{}},
		"all":              {raw: "after=7&follow=1&level=warn&since=2026-01-02T03:04:05Z&tail=10", want: LogQuery{After: 7, HasAfter: true, Follow: true, Level: "warn", Since: since, Tail: 10, HasTail: true}},
		"tail 0":           {raw: "tail=0", want: LogQuery{HasTail: true}},
		"follow false":     {raw: "follow=0", want: LogQuery{}},
		"after 0":          {raw: "after=0", want: LogQuery{HasAfter: true}},
		"unknown":          {raw: "tial=3", wantErr: "unknown parameter"},
		"twice":            {raw: "tail=1&tail=2", wantErr: "given 2 times"},
		"negative after":   {raw: "after=-1", wantErr: "after="},
		"tail too large":   {raw: "tail=10001", wantErr: "tail="},
		"tail negative":    {raw: "tail=-1", wantErr: "tail="},
		"level unknown":    {raw: "level=WARN", wantErr: "level="},
		"since not a time": {raw: "since=10m", wantErr: "since="},
		"follow yes":       {raw: "follow=yes", wantErr: "follow="},
		"bad escape":       {raw: "level=%zz", wantErr: "bad log query"},
		"too long":         {raw: "level=" + strings.Repeat("x", 2000), wantErr: "over 1024 bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			q, err := ParseLogQuery(tc.raw)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadLogQuery) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !q.Since.Equal(tc.want.Since) {
				t.Fatalf("%+v %v, want %+v", q, err, tc.want)
			}
			q.Since, tc.want.Since = time.Time{}, time.Time{}
			if q != tc.want {
				t.Fatalf("%+v, want %+v", q, tc.want)
			}
			// Values round-trips.
			back, err := ParseLogQuery(q.Values().Encode())
			if err != nil || back != q {
				t.Fatalf("round trip: %+v %v, want %+v", back, err, q)
			}
		})
	}
}

// FuzzParseLogQuery: any query is refused with ErrBadLogQuery or parses
// into one that is within its bounds and survives a round trip.
func FuzzParseLogQuery(f *testing.F) {
	for _, s := range []string{"", "after=7&follow=1&level=warn&since=2026-01-02T03:04:05Z&tail=10", "tail=%00", "since=2026-01-02T03:04:05.999999999%2B14:00", "a=b&&&=", "follow=true;tail=3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseLogQuery(raw)
		if err != nil {
			if !errors.Is(err, ErrBadLogQuery) || len(err.Error()) > 512 {
				t.Fatalf("error %q", err)
			}
			return
		}
		if q.Tail < 0 || q.Tail > MaxLogTail || (q.Level != "" && !func() bool { _, ok := LogLevelRank(q.Level); return ok }()) {
			t.Fatalf("out of bounds: %+v", q)
		}
		back, err := ParseLogQuery(q.Values().Encode())
		if err != nil || back.After != q.After || back.Tail != q.Tail || back.Level != q.Level || back.Follow != q.Follow || !back.Since.Equal(q.Since) {
			t.Fatalf("round trip of %+v: %+v %v", q, back, err)
		}
	})
}

func TestReadLogLine(t *testing.T) {
	long := strings.Repeat("x", MaxLogLineBytes)
	tests := map[string]struct {
		in   string
		want []string
		end  error
	}{
		"lines":                  {in: "a\nb\n", want: []string{"a\n", "b\n"}, end: io.EOF},
		"cut last line":          {in: "a\nb", want: []string{"a\n"}, end: io.EOF},
		"longer than the buffer": {in: strings.Repeat("y", 100000) + "\nz\n", want: []string{strings.Repeat("y", 100000) + "\n", "z\n"}, end: io.EOF},
		"too long":               {in: "a\n" + long + "\nb\n", want: []string{"a\n"}, end: ErrLogLineTooLong},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tc.in), 4096)
			var got []string
			for {
				l, err := ReadLogLine(br, nil)
				if err != nil {
					if !errors.Is(err, tc.end) {
						t.Fatalf("end %v, want %v", err, tc.end)
					}
					break
				}
				got = append(got, string(l))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d lines, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("line %d differs", i)
				}
			}
		})
	}
}

func TestTruncateMessage(t *testing.T) {
	m, cut := TruncateMessage(strings.Repeat("é", MaxLogMessageBytes))
	if !cut || len(m) > MaxLogMessageBytes || !utf8.ValidString(m) {
		t.Fatalf("cut %v, %d bytes, valid %v", cut, len(m), utf8.ValidString(m))
	}
	if m, cut := TruncateMessage("short"); cut || m != "short" {
		t.Fatal("a short message was cut")
	}
}
