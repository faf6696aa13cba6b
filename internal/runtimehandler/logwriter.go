package runtimehandler

import (
	"bytes"
	"io"
	"sync"
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
// replaced with U+FFFD. A last line without a newline is written by Close.
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

	mu     sync.Mutex
	buf    []byte      // the current, unfinished line
	cut    bool        // the last line was cut at max: a '\n' right after it ends nothing more
	fields eventFields // its own builder: a write happens outside the runtime calls
}

// Write implements io.Writer. It fails only when the chain does; the guest
// then sees an I/O error from fd_write.
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
		if room := w.max - len(w.buf); len(seg) > room {
			seg = seg[:room]
		}
		if i := bytes.IndexByte(seg, '\n'); i >= 0 {
			w.buf = append(w.buf, seg[:i]...)
			p = p[i+1:]
			if err := w.emit(); err != nil {
				return total - len(p), err
			}
			continue
		}
		w.buf = append(w.buf, seg...)
		p = p[len(seg):]
		if len(w.buf) >= w.max {
			w.cut = true
			if err := w.emit(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

// flush writes the unfinished line, if any.
func (w *logWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	return w.emit()
}

func (w *logWriter) emit() error {
	line := w.buf
	w.buf = w.buf[:0]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if !utf8.Valid(line) {
		line = bytes.ToValidUTF8(line, []byte("\uFFFD"))
	}
	w.a.emitLog(w.level, line, true)
	w.fields.Reset()
	w.fields.Str("level", w.level).Str("message", transient(line)).Str("source", "wasi")
	if _, err := w.a.rec.Append(chain.KindLog, OpWASIOutput, w.fields.Data()); err != nil {
		return &wrapErr{"recording the actor's output in its chain", err}
	}
	return nil
}
