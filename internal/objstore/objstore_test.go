package objstore

import (
	"strings"
	"testing"
)

func TestNewReadsTheEndpoint(t *testing.T) {
	cases := map[string]struct {
		cfg        Config
		wantErr    string
		wantSecure bool
		wantHost   string
	}{
		"a URL with http":        {cfg: Config{Endpoint: "http://127.0.0.1:7070", Bucket: "b"}, wantHost: "127.0.0.1:7070"},
		"a URL with https":       {cfg: Config{Endpoint: "https://s3.eu-west-1.amazonaws.com", Bucket: "b"}, wantSecure: true, wantHost: "s3.eu-west-1.amazonaws.com"},
		"a host is https":        {cfg: Config{Endpoint: "storage.googleapis.com", Bucket: "b"}, wantSecure: true, wantHost: "storage.googleapis.com"},
		"a host with Insecure":   {cfg: Config{Endpoint: "minio:9000", Bucket: "b", Insecure: true}, wantHost: "minio:9000"},
		"a URL with a path":      {cfg: Config{Endpoint: "http://h/bucket", Bucket: "b"}, wantErr: "want http(s)://host[:port]"},
		"another scheme":         {cfg: Config{Endpoint: "s3://h", Bucket: "b"}, wantErr: "want http(s)://host[:port]"},
		"no bucket":              {cfg: Config{Endpoint: "h"}, wantErr: "no bucket"},
		"no endpoint":            {cfg: Config{Bucket: "b"}, wantErr: "no endpoint"},
		"static keys and prefix": {cfg: Config{Endpoint: "h:1", Bucket: "b", Prefix: "/p/q/", AccessKey: "a", SecretKey: "s"}, wantSecure: true, wantHost: "h:1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u := s.client.EndpointURL()
			if u.Host != tc.wantHost || (u.Scheme == "https") != tc.wantSecure {
				t.Fatalf("endpoint %s, want host %s secure %v", u, tc.wantHost, tc.wantSecure)
			}
			if tc.cfg.Prefix != "" && s.prefix != "p/q/" {
				t.Fatalf("prefix %q, want p/q/", s.prefix)
			}
		})
	}
}

// The store's description, which goes into logs and errors, never holds
// its credentials.
func TestConfigStringHasNoSecrets(t *testing.T) {
	c := Config{Endpoint: "h", Bucket: "b", Prefix: "p", AccessKey: "AKIAEXAMPLE", SecretKey: "s3cr3t", SessionToken: "tok"}
	if s := c.String(); strings.Contains(s, "AKIAEXAMPLE") || strings.Contains(s, "s3cr3t") || strings.Contains(s, "tok") {
		t.Fatalf("%q names a credential", s)
	}
}
