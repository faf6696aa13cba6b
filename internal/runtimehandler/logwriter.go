package runtimehandler

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/troupe-dev/troupe/internal/chain"
)

// OpWASIOutput is the Event.Op of a LogEvent that came from the guest's
// WASI stdout or stderr rather than from a log call.
const OpWASIOutput = "wasi-output"

// LogWriter returns a writer for the guest's WASI stdout or stderr: every
// line written becomes a log line at level (debug, info, warn or error;
// anything else means info) and a LogEvent in the chain. A line longer than
// the actor's MaxLogBytes is cut into pieces of that size; invalid UTF-8 is
// replaced with U+FFFD; secret values the actor was served are scrubbed
// from each line. A last line without a newline is written by Close.
func (a *Actor) LogWriter(level string) io.Writer {
	lvl, ok := parseLevel([]byte(level))
	if !ok {
		lvl = levelInfo
	}
	w := &logWriter{a: a, level: lvl, max: a.cfg.MaxLogBytes}
	a.mu.Lock()
	a.writers = append(a.writers, w)
	a.mu.Unlock()
	return w
}

type logWriter struct {
	a     *Actor
	level string
	max   int

	mu       sync.Mutex
	buf      []byte      // the current, unfinished line
	cut      bool        // the last line was cut at max: a '\n' right after it ends nothing more
	flushing bool        // the actor has stopped: lines are charged, not admitted
	fields   eventFields // its own builder: a write happens outside the runtime calls
}

// Write implements io.Writer. It fails only when the chain does; the guest
// then sees an I/O error from fd_write. A line the actor's disk budget
// refuses traps the guest's call, as a runtime call's event does.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	total := len(p)
	for len(p) > 0 {
		if w.cut && p[0] == '\n' {
			w.cut = false
			p = p[1:]
			continue
		}
		w.cut = false
		seg := p
		// room is at least 1: a rune longer than a tiny limit is still
		// collected whole.
		if room := max(w.max-len(w.buf), 1); len(seg) > room {
			seg = seg[:room]
		}
		if i := bytes.IndexByte(seg, '\n'); i >= 0 {
			w.buf = append(w.buf, seg[:i]...)
			p = p[i+1:]
			if err := w.emit(len(w.buf)); err != nil {
				return total - len(p), err
			}
			continue
		}
		w.buf = append(w.buf, seg...)
		p = p[len(seg):]
		if len(w.buf) >= w.max {
			// Cut before a rune the limit would split; its bytes start the
			// next line. A line that is nothing but an unfinished rune waits
			// for the rest of it.
			cut := runeCut(w.buf)
			if cut == 0 {
				continue
			}
			w.cut = cut == len(w.buf)
			if err := w.emit(cut); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

// runeCut returns where to cut b so that no UTF-8 sequence is split: before
// an unfinished sequence at its end (0 if that is all of b), else len(b).
func runeCut(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// flush writes the unfinished line, if any. It runs once the actor has
// stopped, so the line is charged to its budget, never refused.
func (w *logWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	w.flushing = true
	return w.emit(len(w.buf))
}

// emit writes w.buf[:n] as one line (or more, if replacing invalid UTF-8
// made it longer than the limit) and keeps the rest of w.buf.
func (w *logWriter) emit(n int) error {
	line := w.buf[:n]
	if k := len(line); k > 0 && line[k-1] == '\r' {
		line = line[:k-1]
	}
	if !utf8.Valid(line) {
		line = bytes.ToValidUTF8(line, []byte("\uFFFD")) // a copy
	}
	var err error
	for first := true; first || len(line) > 0; first = false {
		piece := line
		if len(piece) > w.max {
			end := w.max
			for end > 0 && !utf8.RuneStart(piece[end]) {
				end--
			}
			if end == 0 {
				_, end = utf8.DecodeRune(piece)
			}
			piece = piece[:end]
		}
		line = line[len(piece):]
		if err == nil {
			err = w.record(piece)
		}
	}
	w.buf = w.buf[:copy(w.buf, w.buf[n:])]
	return err
}

func (w *logWriter) record(line []byte) error {
	a := w.a
	line = a.RedactBytes(line)
	w.fields.Reset()
	w.fields.Str("level", w.level).Str("message", transient(line)).Str("source", "wasi")
	data := w.fields.Data()
	if b := a.budget; b != nil {
		n := chain.RecordSize(chain.KindLog, OpWASIOutput, len(data))
		if w.flushing {
			b.Charge(n)
		} else {
			var deadline time.Time
			if a.deadline != nil {
				deadline = a.deadline()
			}
			if err := b.AdmitBy(deadline, n); err != nil {
				// Inside the guest's fd_write: the call fails, as a
				// runtime call's does; an I/O error the guest may ignore
				// would let it spin on refused writes.
				trap(OpWASIOutput, "the actor's disk budget refused its output", err)
			}
		}
	}
	if _, err := a.rec.Append(chain.KindLog, OpWASIOutput, data); err != nil {
		return fmt.Errorf("recording the actor's output in its chain: %w", err)
	}
	a.emitLog(w.level, line, true)
	releaseLarge(&w.fields, data)
	return nil
}
