package objstore

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Environment variables the store's configuration reads. The chart sets
// the key pair from a Secret; the rest are the AWS tools' own names, so a
// workstation configured for the aws CLI works as it is.
const (
	EnvAccessKey     = "AWS_ACCESS_KEY_ID"
	EnvSecretKey     = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken  = "AWS_SESSION_TOKEN"
	EnvEndpointS3    = "AWS_ENDPOINT_URL_S3"
	EnvEndpoint      = "AWS_ENDPOINT_URL"
	EnvRegion        = "AWS_REGION"
	EnvDefaultRegion = "AWS_DEFAULT_REGION"
)

// Flags are a store's settings on a command line. cmd/host, cmd/manager
// and cmd/troupe bind them alike (Bind), so that one installation's store
// is described the same way everywhere; credentials never come from a flag
// (a flag shows in ps and in the pod spec), only from the environment or
// the AWS chain (Config).
type Flags struct {
	Endpoint, Bucket, Prefix, Region string
	PathStyle, Insecure              bool
}

// Bind declares the flags on fs, each name after prefix ("archive-" gives
// --archive-endpoint). withLocation adds the bucket and key prefix flags;
// `troupe chain` takes those from its s3:// argument instead.
func (f *Flags) Bind(fs *flag.FlagSet, prefix string, withLocation bool) {
	fs.StringVar(&f.Endpoint, prefix+"endpoint", "", "S3 endpoint: host[:port] or http(s)://host[:port] (default: $"+EnvEndpointS3+", $"+EnvEndpoint+", else AWS S3 in the region)")
	if withLocation {
		fs.StringVar(&f.Bucket, prefix+"bucket", "", "bucket of the archive (empty: no archive)")
		fs.StringVar(&f.Prefix, prefix+"prefix", "", "key prefix in the bucket, so that one bucket can serve several installations")
	}
	fs.StringVar(&f.Region, prefix+"region", "", "the bucket's region (default: $"+EnvRegion+", $"+EnvDefaultRegion+", else asked of the store)")
	fs.BoolVar(&f.PathStyle, prefix+"path-style", false, "address the bucket in the URL's path (most self-hosted stores: MinIO, Ceph RGW, SeaweedFS, versitygw)")
	fs.BoolVar(&f.Insecure, prefix+"insecure", false, "plain http when the endpoint has no scheme (a store inside the cluster network)")
}

// Enabled reports whether the flags ask for a store at all: a bucket or an
// endpoint was given. No bucket and no endpoint means no archive.
func (f *Flags) Enabled() bool { return f.Bucket != "" || f.Endpoint != "" }

// bucketPattern is S3's rule for bucket names (3-63 lowercase letters,
// digits, dots and dashes, starting and ending with a letter or digit);
// GCS and the self-hosted stores accept a superset of it.
var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Config builds the store's Config from the flags and the environment
// (getenv, os.Getenv in the binaries): the endpoint and region fall back
// on the AWS variables, and the key pair comes from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN) or, when both are unset,
// from the AWS chain when the store is opened. Errors name the setting at
// fault and never its secret value.
func (f *Flags) Config(getenv func(string) string) (Config, error) {
	cfg := Config{
		Endpoint:  f.Endpoint,
		Bucket:    f.Bucket,
		Prefix:    strings.Trim(f.Prefix, "/"),
		Region:    f.Region,
		PathStyle: f.PathStyle,
		Insecure:  f.Insecure,
	}
	if cfg.Region == "" {
		cfg.Region = firstSet(getenv, EnvRegion, EnvDefaultRegion)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = firstSet(getenv, EnvEndpointS3, EnvEndpoint)
	}
	if cfg.Endpoint == "" {
		// AWS S3 itself: the regional endpoint when the region is known.
		cfg.Endpoint = "s3.amazonaws.com"
		if cfg.Region != "" {
			cfg.Endpoint = "s3." + cfg.Region + ".amazonaws.com"
		}
	}
	var errs []error
	if err := checkEndpoint(cfg.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if !bucketPattern.MatchString(cfg.Bucket) {
		errs = append(errs, fmt.Errorf("bucket %q: want 3-63 lowercase letters, digits, dots and dashes", cfg.Bucket))
	}
	if err := checkPrefix(cfg.Prefix); err != nil {
		errs = append(errs, err)
	}
	if strings.ContainsFunc(cfg.Region, func(r rune) bool { return !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
		errs = append(errs, fmt.Errorf("region %q: want lowercase letters, digits and dashes (us-east-1)", cfg.Region))
	}
	cfg.AccessKey, cfg.SecretKey, cfg.SessionToken = getenv(EnvAccessKey), getenv(EnvSecretKey), getenv(EnvSessionToken)
	switch {
	case cfg.AccessKey != "" && cfg.SecretKey == "":
		errs = append(errs, fmt.Errorf("%s is set but %s is not: set both, or neither to use the AWS credential chain", EnvAccessKey, EnvSecretKey))
	case cfg.AccessKey == "" && cfg.SecretKey != "":
		errs = append(errs, fmt.Errorf("%s is set but %s is not: set both, or neither to use the AWS credential chain", EnvSecretKey, EnvAccessKey))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("object store configuration: %w", err)
	}
	return cfg, nil
}

// Open builds the Config (see Config) and the Store it describes; it does
// not contact the store.
func (f *Flags) Open(getenv func(string) string) (*S3, Config, error) {
	cfg, err := f.Config(getenv)
	if err != nil {
		return nil, Config{}, err
	}
	st, err := New(cfg)
	if err != nil {
		return nil, Config{}, err
	}
	return st, cfg, nil
}

func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// checkEndpoint refuses endpoints New would refuse, and any with user
// information: a key in a URL would end up in logs (Config.String prints
// the endpoint), so the error does not repeat it.
func checkEndpoint(ep string) error {
	if !strings.Contains(ep, "://") {
		if strings.ContainsAny(ep, "/@?# ") {
			return errors.New("endpoint: want host[:port] or http(s)://host[:port]")
		}
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return errors.New("endpoint: not a URL; want host[:port] or http(s)://host[:port]")
	}
	if u.User != nil {
		return errors.New("endpoint: holds credentials; give them in " + EnvAccessKey + " and " + EnvSecretKey + " instead")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("endpoint %q: want http(s)://host[:port]", ep)
	}
	return nil
}

// checkPrefix keeps a key prefix to plain path segments.
func checkPrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > 256 {
		return fmt.Errorf("prefix: %d bytes, at most 256", len(p))
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsFunc(seg, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '\\' }) {
			return fmt.Errorf("prefix %q: want /-separated segments of printable ASCII, none empty, . or ..", p)
		}
	}
	return nil
}
