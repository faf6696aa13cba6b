package runtimehandler

// TEMPORARY: a private copy of the chain.Fields API of CONTRACTS.md, used
// until internal/chain commits it; then this file goes and eventFields
// becomes an alias of chain.Fields.

import (
	"encoding/base64"
	"math"
	"strconv"
	"unicode/utf8"
)

type eventFields struct{ buf []byte }

func (f *eventFields) Reset() { f.buf = append(f.buf[:0], '{') }

func (f *eventFields) key(k string) {
	if len(f.buf) == 0 {
		f.buf = append(f.buf, '{')
	}
	if len(f.buf) > 1 {
		f.buf = append(f.buf, ',')
	}
	f.str(k)
	f.buf = append(f.buf, ':')
}

func (f *eventFields) str(s string) {
	f.buf = append(f.buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				f.buf = append(f.buf, '\\', c)
			case c < 0x20:
				f.buf = append(f.buf, `\u00`...)
				f.buf = append(f.buf, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
			default:
				f.buf = append(f.buf, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			f.buf = append(f.buf, `\ufffd`...)
		} else {
			f.buf = append(f.buf, s[i:i+n]...)
		}
		i += n
	}
	f.buf = append(f.buf, '"')
}

func (f *eventFields) Str(k, v string) *eventFields { f.key(k); f.str(v); return f }
func (f *eventFields) Int(k string, v int64) *eventFields {
	f.key(k)
	f.buf = strconv.AppendInt(f.buf, v, 10)
	return f
}
func (f *eventFields) Uint(k string, v uint64) *eventFields {
	f.key(k)
	f.buf = strconv.AppendUint(f.buf, v, 10)
	return f
}
func (f *eventFields) Float(k string, v float64) *eventFields {
	f.key(k)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		f.buf = append(f.buf, "null"...)
		return f
	}
	f.buf = strconv.AppendFloat(f.buf, v, 'g', -1, 64)
	return f
}
func (f *eventFields) Bool(k string, v bool) *eventFields {
	f.key(k)
	f.buf = strconv.AppendBool(f.buf, v)
	return f
}
func (f *eventFields) Blob(k string, v []byte) *eventFields {
	f.key(k)
	f.buf = append(f.buf, '"')
	f.buf = base64.StdEncoding.AppendEncode(f.buf, v)
	f.buf = append(f.buf, '"')
	return f
}
func (f *eventFields) JSON(k string, raw []byte) *eventFields {
	f.key(k)
	f.buf = append(f.buf, raw...)
	return f
}
func (f *eventFields) Null(k string) *eventFields {
	f.key(k)
	f.buf = append(f.buf, "null"...)
	return f
}
func (f *eventFields) Secret(k string) *eventFields {
	f.key(k)
	f.buf = append(f.buf, `{"redacted":true}`...)
	return f
}
func (f *eventFields) Data() []byte {
	if len(f.buf) == 0 {
		f.buf = append(f.buf, '{')
	}
	f.buf = append(f.buf, '}')
	return f.buf
}
