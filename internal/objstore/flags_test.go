package objstore

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestFlagsConfig(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG"
	cases := map[string]struct {
		args    []string
		env     map[string]string
		want    Config
		wantErr []string
	}{
		"flags only, keys from the environment": {
			args: []string{"--archive-endpoint=http://versitygw:7070", "--archive-bucket=troupe", "--archive-prefix=/prod/eu/", "--archive-region=eu-west-1", "--archive-path-style"},
			env:  map[string]string{EnvAccessKey: "AKIA", EnvSecretKey: secret, EnvSessionToken: "tok"},
			want: Config{Endpoint: "http://versitygw:7070", Bucket: "troupe", Prefix: "prod/eu", Region: "eu-west-1", PathStyle: true, AccessKey: "AKIA", SecretKey: secret, SessionToken: "tok"},
		},
		"endpoint and region from the AWS variables": {
			args: []string{"--archive-bucket=troupe"},
			env:  map[string]string{EnvEndpoint: "https://storage.googleapis.com", EnvDefaultRegion: "auto-1"},
			want: Config{Endpoint: "https://storage.googleapis.com", Bucket: "troupe", Region: "auto-1"},
		},
		"the S3-specific endpoint wins": {
			args: []string{"--archive-bucket=troupe"},
			env:  map[string]string{EnvEndpoint: "https://a.example", EnvEndpointS3: "https://s3.example", EnvRegion: "r1", EnvDefaultRegion: "r2"},
			want: Config{Endpoint: "https://s3.example", Bucket: "troupe", Region: "r1"},
		},
		"AWS S3 in the region when nothing names an endpoint": {
			args: []string{"--archive-bucket=troupe", "--archive-region=us-west-2"},
			want: Config{Endpoint: "s3.us-west-2.amazonaws.com", Bucket: "troupe", Region: "us-west-2"},
		},
		"AWS S3 without a region": {
			args: []string{"--archive-bucket=troupe"},
			want: Config{Endpoint: "s3.amazonaws.com", Bucket: "troupe"},
		},
		"an insecure host": {
			args: []string{"--archive-bucket=troupe", "--archive-endpoint=minio.store:9000", "--archive-insecure"},
			want: Config{Endpoint: "minio.store:9000", Bucket: "troupe", Insecure: true},
		},
		"an endpoint but no bucket": {
			args:    []string{"--archive-endpoint=http://h:1"},
			wantErr: []string{`bucket ""`},
		},
		"a bad bucket, prefix and region at once": {
			args:    []string{"--archive-bucket=Troupe_Archive", "--archive-prefix=a/../b", "--archive-region=EU West"},
			wantErr: []string{"bucket", "prefix", "region"},
		},
		"a key in the endpoint is refused without repeating it": {
			args:    []string{"--archive-bucket=troupe", "--archive-endpoint=https://AKIA:" + secret + "@s3.example"},
			wantErr: []string{"holds credentials"},
		},
		"an endpoint with a path": {
			args:    []string{"--archive-bucket=troupe", "--archive-endpoint=https://s3.example/troupe"},
			wantErr: []string{"want http(s)://host[:port]"},
		},
		"a host with a path": {
			args:    []string{"--archive-bucket=troupe", "--archive-endpoint=s3.example/troupe"},
			wantErr: []string{"want host[:port]"},
		},
		"half a key pair": {
			args:    []string{"--archive-bucket=troupe"},
			env:     map[string]string{EnvSecretKey: secret},
			wantErr: []string{EnvAccessKey + " is not"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var f Flags
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f.Bind(fs, "archive-", true)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if !f.Enabled() {
				t.Fatal("flags with a bucket or an endpoint are not enabled")
			}
			got, err := f.Config(func(k string) string { return tc.env[k] })
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q repeats the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if _, err := New(got); err != nil {
				t.Fatalf("New refuses what Config built: %v", err)
			}
		})
	}
}

// No bucket and no endpoint is no store; the CLI binds the flags without
// the location (it comes from the s3:// argument).
func TestFlagsDisabledAndWithoutLocation(t *testing.T) {
	var f Flags
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f.Bind(fs, "archive-", true)
	if err := fs.Parse([]string{"--archive-region=eu-west-1", "--archive-path-style"}); err != nil {
		t.Fatal(err)
	}
	if f.Enabled() {
		t.Fatal("a region alone enables the store")
	}
	var g Flags
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	g.Bind(fs, "", false)
	if fs.Lookup("bucket") != nil || fs.Lookup("prefix") != nil || fs.Lookup("endpoint") == nil {
		t.Fatal("without location: want --endpoint and no --bucket or --prefix")
	}
}
