package component

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// FuzzParsePullSecret feeds arbitrary Secret content to the pull-secret
// parser: it must never panic, and an error must never quote the content.
func FuzzParsePullSecret(f *testing.F) {
	f.Add([]byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}}}`), false)
	f.Add([]byte(`{"auths":{"r.example":{"username":"u","password":"p"}}}`), false)
	f.Add([]byte(`{"r.example":{"auth":"!!!"}}`), true)
	f.Add([]byte(`{"auths":{"*.example.com/team":{"identitytoken":"tok"}}}`), false)
	f.Add([]byte(`{"auths":[1,2]}`), false)
	f.Add([]byte(`{`), true)
	f.Fuzz(func(t *testing.T, data []byte, legacy bool) {
		key := corev1.DockerConfigJsonKey
		if legacy {
			key = corev1.DockerConfigKey
		}
		s := &corev1.Secret{Data: map[string][]byte{key: data}}
		s.Name = "fuzz"
		auths, err := parsePullSecret(s)
		if err != nil {
			if len(data) >= 8 && strings.Contains(err.Error(), string(data)) {
				t.Fatalf("the error quotes the secret: %v", err)
			}
			return
		}
		kc := newKeychain(auths)
		for _, a := range kc.auths {
			_ = matchHost(a.host, "registry.example:5000")
		}
	})
}

// FuzzExtractWasm feeds arbitrary layers to the tar reader: no panic, and
// nothing larger than the bound comes out.
func FuzzExtractWasm(f *testing.F) {
	f.Add([]byte{})
	f.Add(module("seed"))
	f.Add([]byte("ustar\x00garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 16
		out, err := extractWasm(data, max)
		if err == nil && len(out) > max {
			t.Fatalf("extracted %d bytes past the %d bound", len(out), max)
		}
		_ = CheckModule("fuzz", data)
	})
}

// FuzzDescribeText: whatever text a ConfigMap's data holds, saying what it
// is never panics, stays one bounded line and never echoes the text.
func FuzzDescribeText(f *testing.F) {
	f.Add("(module)")
	f.Add(";; c\n(; a (; b ;) ;) (module)")
	f.Add("(; (; ;)")
	f.Add(";;")
	f.Add("<html>")
	f.Fuzz(func(t *testing.T, text string) {
		d := describeText("key", text)
		if strings.Contains(d, "\n") || len(d) > 400 {
			t.Fatalf("description %q", d)
		}
		if len(text) >= 16 && strings.Contains(d, text) {
			t.Fatalf("the description quotes the text: %q", d)
		}
	})
}
