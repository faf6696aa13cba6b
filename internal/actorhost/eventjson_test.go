package actorhost

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// jsonOf is what encoding/json writes for v, the reference the hand-written
// encoders must match byte for byte (the chain format).
func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkEventJSON compares both encoders with encoding/json for the events
// of one message with these strings.
func checkEventJSON(t testing.TB, id, ns, name, ext, errMsg string, path []string, msg, resp []byte, withResp, withState bool) {
	t.Helper()
	md := messageData{ID: id, From: Sender{ActorID: id, Namespace: ns, Name: name, External: ext}, Bytes: len(msg),
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Path: path, msg: msg}
	got := md.appendJSON([]byte("prefix"))
	md.Sha256 = runtimehandler.Digest(msg)
	if want := append([]byte("prefix"), jsonOf(t, md)...); !bytes.Equal(got, want) {
		t.Fatalf("messageData:\n got %s\nwant %s", got, want)
	}
	d := handlerResultData{ID: id, OK: errMsg == "", Error: errMsg, StateChanged: withState}
	if withState {
		n := len(ns)
		d.stateRecord = stateRecord{HasState: true, Sha256: digestHex([]byte(ns)), Bytes: &n}
	}
	if withResp {
		has, n := resp != nil, len(resp)
		d.HasResponse = &has
		if has {
			d.ResponseBytes, d.response = &n, resp
		}
	}
	got = d.appendJSON(nil)
	if d.response != nil {
		d.ResponseSha256 = runtimehandler.Digest(d.response)
	}
	if want := jsonOf(t, d); !bytes.Equal(got, want) {
		t.Fatalf("handlerResultData:\n got %s\nwant %s", got, want)
	}
}

func TestEventJSONMatchesEncodingJSON(t *testing.T) {
	tests := map[string]struct {
		id, ns, name, ext, errMsg string
		path                      []string
		msg, resp                 []byte
		withResp, withState       bool
	}{
		"an actor's request":        {id: "5f0c", ns: "default", name: "ping", path: []string{"a1", "a2"}, msg: []byte("hi"), resp: []byte("ok"), withResp: true, withState: true},
		"an external send":          {id: "x", ext: "troupe-cli", msg: []byte{}},
		"no response":               {id: "r", name: "n", withResp: true},
		"empty response":            {id: "r", name: "n", withResp: true, resp: []byte{}},
		"an empty path":             {id: "r", path: []string{}},
		"the handler's error":       {id: "e", errMsg: "handler failed: \"quoted\" <b> & \\ \n\t\x01 \u2028 é"},
		"HTML and escapes in names": {id: "<id>&", ns: "a\"b", name: "c\\d", ext: "\x7f\x00", path: []string{"<", ">", "&"}},
		"invalid UTF-8":             {id: "\xff\xfe", name: "a\xc3", errMsg: "\xed\xa0\x80", path: []string{"\x80"}},
		"line separators":           {id: "\u2028\u2029", errMsg: "\u2028"},
		"all empty":                 {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			checkEventJSON(t, tc.id, tc.ns, tc.name, tc.ext, tc.errMsg, tc.path, tc.msg, tc.resp, tc.withResp, tc.withState)
		})
	}
}

// FuzzEventJSON: for any strings, the hand-written encoders write what
// encoding/json writes.
func FuzzEventJSON(f *testing.F) {
	f.Add("5f0c", "default", "ping", "", "", "a1", []byte("hi"), true)
	f.Add("<&>", "\u2028", "\xff", "ext\n", "err \"x\"", "\x00", []byte{}, false)
	f.Fuzz(func(t *testing.T, id, ns, name, ext, errMsg, hop string, msg []byte, flag bool) {
		checkEventJSON(t, id, ns, name, ext, errMsg, []string{hop, id}, msg, msg, flag, !flag)
	})
}
