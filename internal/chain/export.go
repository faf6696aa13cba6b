package chain

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as one line of JSON (without the newline): seq, hash,
// parent (lowercase hex), kind, op, time (RFC 3339, UTC, nanoseconds) and
// data. Data that is valid UTF-8 JSON on one line is embedded as is; other
// data is a base64 string (standard encoding) marked by
// "data_encoding":"base64". Either way every byte of the event survives, so
// an export can be re-hashed.
func AppendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"hash":"`...)
	dst = appendHex(dst, e.Hash[:])
	dst = append(dst, `","parent":"`...)
	dst = appendHex(dst, e.Parent[:])
	dst = append(dst, `","kind":`...)
	dst = AppendJSONString(dst, string(e.Kind))
	dst = append(dst, `,"op":`...)
	dst = AppendJSONString(dst, e.Op)
	dst = append(dst, `,"time":"`...)
	dst = time.Unix(0, e.Time).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","data":`...)
	if JSONShaped(e.Data) {
		dst = append(dst, e.Data...)
	} else {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, e.Data)
		dst = append(dst, `","data_encoding":"base64"`...)
	}
	return append(dst, '}')
}

// JSONShaped reports whether data can be embedded verbatim in a JSON line:
// valid JSON, valid UTF-8, and no line breaks.
func JSONShaped(data []byte) bool {
	for _, c := range data {
		if c == '\n' || c == '\r' {
			return false
		}
	}
	return len(data) > 0 && utf8.Valid(data) && json.Valid(data)
}

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}
