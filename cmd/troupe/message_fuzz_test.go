package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzResponseJSON: whatever bytes an actor answers, `troupe request
// --json` prints one valid UTF-8 JSON value that gives the bytes back: the
// JSON itself, a string, or {"base64": ...}.
func FuzzResponseJSON(f *testing.F) {
	for _, seed := range []string{`{"x": [1, 2]}`, `"s"`, "plain text", "\xff\xfe", "", `{"a":"\xff"}`, "[" + string(bytes.Repeat([]byte("["), 20000))} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, resp []byte) {
		out, err := responseJSON(resp)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(out) || !json.Valid(out) {
			t.Fatalf("%q printed as %q: not valid UTF-8 JSON", resp, out)
		}
		var asString string
		var asBase64 struct {
			Base64 *string `json:"base64"`
		}
		switch {
		case json.Unmarshal(out, &asString) == nil && asString == string(resp):
		case json.Unmarshal(out, &asBase64) == nil && asBase64.Base64 != nil && decodes(*asBase64.Base64, resp):
		default:
			var want bytes.Buffer
			if json.Compact(&want, resp) != nil || !bytes.Equal(out, want.Bytes()) {
				t.Fatalf("%q printed as %q: neither itself, a string nor base64 of it", resp, out)
			}
		}
	})
}

func decodes(b64 string, want []byte) bool {
	got, err := base64.StdEncoding.DecodeString(b64)
	return err == nil && bytes.Equal(got, want)
}
