package actorhost

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/troupe-dev/troupe/internal/chain"
)

// The events of every message (MessageReceived or RequestReceived, then
// HandlerResult) are encoded here without reflection into a buffer the
// actor reuses: encoding/json cost a fifth of a message's handling and two
// allocations. The bytes are exactly encoding/json's for the same struct
// (TestEventJSONMatchesEncodingJSON, FuzzEventJSON), so the chain format
// does not change: a string that is not plain ASCII is handed to
// encoding/json, which alone decides how it is escaped.

// maxKeptEventBuffer is the largest event buffer an actor keeps between
// messages: one long error must not cost an idle actor its size forever.
const maxKeptEventBuffer = 64 << 10

// recordEventBuf records the event encoded in a.eventBuf, with the
// chain's AppendNoting note (nil for none). Called with the call lock held.
func (a *Actor) recordEventBuf(kind chain.Kind, op string, note func(uint64)) error {
	err := a.recordJSON(kind, op, a.eventBuf, note)
	if cap(a.eventBuf) > maxKeptEventBuffer {
		a.eventBuf = nil
	}
	return err
}

// appendJSONString appends s as encoding/json writes it.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		// Printable ASCII but the characters encoding/json escapes: the
		// quote, the backslash and HTML's <, > and &.
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// jsonObject appends the fields of one JSON object to a buffer.
type jsonObject struct {
	buf   []byte
	first bool
}

func (o *jsonObject) key(k string) {
	if o.first {
		o.first = false
	} else {
		o.buf = append(o.buf, ',')
	}
	o.buf = append(o.buf, '"')
	o.buf = append(o.buf, k...) // keys are constants, plain ASCII
	o.buf = append(o.buf, '"', ':')
}

func (o *jsonObject) str(k, v string) {
	o.key(k)
	o.buf = appendJSONString(o.buf, v)
}

func (o *jsonObject) strOmitEmpty(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *jsonObject) boolean(k string, v bool) {
	o.key(k)
	o.buf = strconv.AppendBool(o.buf, v)
}

func (o *jsonObject) integer(k string, v int) {
	o.key(k)
	o.buf = strconv.AppendInt(o.buf, int64(v), 10)
}

func openObject(dst []byte) jsonObject {
	return jsonObject{buf: append(dst, '{'), first: true}
}

func (o *jsonObject) close() []byte { return append(o.buf, '}') }

// appendSender appends s as encoding/json writes a Sender.
func appendSender(dst []byte, s *Sender) []byte {
	o := openObject(dst)
	o.strOmitEmpty("actorID", s.ActorID)
	o.strOmitEmpty("namespace", s.Namespace)
	o.strOmitEmpty("name", s.Name)
	o.strOmitEmpty("external", s.External)
	return o.close()
}

// appendJSON appends md as encoding/json writes it.
func (md *messageData) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.str("id", md.ID)
	o.key("from")
	o.buf = appendSender(o.buf, &md.From)
	o.integer("bytes", md.Bytes)
	o.key("sha256")
	o.buf = appendDigestOr(o.buf, md.Sha256, md.msg)
	o.str("traceparent", md.TraceParent)
	if len(md.Path) > 0 {
		o.key("path")
		o.buf = append(o.buf, '[')
		for i, p := range md.Path {
			if i > 0 {
				o.buf = append(o.buf, ',')
			}
			o.buf = appendJSONString(o.buf, p)
		}
		o.buf = append(o.buf, ']')
	}
	return o.close()
}

// appendJSON appends d as encoding/json writes it.
func (d *handlerResultData) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.str("id", d.ID)
	o.boolean("ok", d.OK)
	o.strOmitEmpty("error", d.Error)
	// The embedded stateRecord's fields, where encoding/json puts them.
	o.boolean("hasState", d.HasState)
	o.strOmitEmpty("stateSha256", d.Sha256)
	if d.Bytes != nil {
		o.integer("stateBytes", *d.Bytes)
	}
	o.boolean("stateChanged", d.StateChanged)
	if d.HasResponse != nil {
		o.boolean("hasResponse", *d.HasResponse)
	}
	if d.ResponseBytes != nil {
		o.integer("responseBytes", *d.ResponseBytes)
	}
	if d.ResponseSha256 != "" || d.response != nil {
		o.key("responseSha256")
		o.buf = appendDigestOr(o.buf, d.ResponseSha256, d.response)
	}
	return o.close()
}

// appendDigestOr appends digest as a JSON string, or when it is "" the
// SHA-256 of b in hex (runtimehandler.Digest), without making a string of
// it.
func appendDigestOr(dst []byte, digest string, b []byte) []byte {
	if digest != "" {
		return appendJSONString(dst, digest)
	}
	dst = append(dst, '"')
	d := sha256.Sum256(b)
	dst = hex.AppendEncode(dst, d[:])
	return append(dst, '"')
}
