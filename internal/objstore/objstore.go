package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrNotFound is returned for a key the store does not hold.
var ErrNotFound = errors.New("object not found")

// ErrTooLarge is returned by Get for an object larger than the caller's bound.
var ErrTooLarge = errors.New("object larger than allowed")

// ErrExists is returned by Put with IfAbsent for a key the store already
// holds, when the store honours conditional writes (many do not: callers
// never rely on it alone).
var ErrExists = errors.New("object exists")

// Store holds whole objects under keys. Keys are relative to the
// configured prefix; a Put is atomic (a reader sees the whole object or
// none), as S3 guarantees for a single PUT.
type Store interface {
	// Put stores size bytes from r under key, replacing any object there.
	// With ifAbsent it asks the store to refuse when key exists (ErrExists);
	// a store without conditional writes replaces it.
	Put(ctx context.Context, key string, r io.Reader, size int64, ifAbsent bool) error
	// Get returns the object's bytes; ErrNotFound when there is none,
	// ErrTooLarge when it holds more than max bytes (nothing more is read).
	Get(ctx context.Context, key string, max int64) ([]byte, error)
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes key; removing a missing key is no error.
	Delete(ctx context.Context, key string) error
	// Scan returns at most max objects whose keys start with prefix and
	// sort after after ("": from the first), sorted, with their sizes and
	// times: a walk over a large prefix a bounded page at a time.
	Scan(ctx context.Context, prefix, after string, max int) ([]ObjectInfo, error)
}

// ObjectInfo is an object as a listing gives it.
type ObjectInfo struct {
	Key  string
	Size int64
	// Modified is the store's time of the object's last PUT.
	Modified time.Time
}

// Config says where the store is and how to sign in.
type Config struct {
	// Endpoint is host[:port], or a URL whose scheme says http or https
	// (https://s3.eu-west-1.amazonaws.com, http://127.0.0.1:7070).
	Endpoint string
	// Bucket holds the objects; Prefix (no leading or trailing slash
	// needed) is put before every key, so one bucket can serve several
	// installations.
	Bucket string
	Prefix string
	// Region is the bucket's region; empty asks the store.
	Region string
	// PathStyle addresses the bucket in the path (http://host/bucket/key)
	// rather than the host name; most self-hosted stores need it.
	PathStyle bool
	// Insecure uses http when Endpoint has no scheme.
	Insecure bool
	// AccessKey and SecretKey (and SessionToken) sign requests. When both
	// are empty, credentials come from the environment, the shared AWS
	// credentials file, web identity (IRSA), the container endpoint or the
	// instance metadata service, in that order.
	AccessKey    string
	SecretKey    string
	SessionToken string
	// Transport, when set, carries the requests (tests, proxies).
	Transport http.RoundTripper
}

// String names the store without its credentials, for logs and errors.
func (c Config) String() string {
	return fmt.Sprintf("s3://%s/%s (endpoint %s)", c.Bucket, strings.Trim(c.Prefix, "/"), c.Endpoint)
}

// S3 is a Store in an S3-compatible bucket.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string // "" or "some/prefix/"
}

// New returns the Store cfg describes. It does not contact the store.
func New(cfg Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("object store: no bucket")
	}
	host, secure := cfg.Endpoint, !cfg.Insecure
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil {
			return nil, fmt.Errorf("object store endpoint %q: %w", cfg.Endpoint, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("object store endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	if host == "" {
		return nil, errors.New("object store: no endpoint")
	}
	var creds *credentials.Credentials
	switch {
	case cfg.AccessKey != "" || cfg.SecretKey != "":
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	default:
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", cfg, err)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: prefix}, nil
}

// Client is the underlying minio-go client (tests make buckets with it).
func (s *S3) Client() *minio.Client { return s.client }

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, ifAbsent bool) error {
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", SendContentMd5: true}
	if ifAbsent {
		opts.SetMatchETagExcept("*")
	}
	// A known size makes one PUT (no multipart): atomic, and the MD5 lets
	// the store refuse bytes damaged on the way.
	if _, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, r, size, opts); err != nil {
		if ifAbsent && minio.ToErrorResponse(err).StatusCode == http.StatusPreconditionFailed {
			return fmt.Errorf("putting %s: %w", key, ErrExists)
		}
		return fmt.Errorf("putting %s: %w", key, err)
	}
	return nil
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.getError(key, err)
	}
	defer obj.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(obj, max+1))
	if err != nil {
		return nil, s.getError(key, err)
	}
	if n > max {
		return nil, fmt.Errorf("getting %s: %w (more than %d bytes)", key, ErrTooLarge, max)
	}
	return buf.Bytes(), nil
}

func (s *S3) getError(key string, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return fmt.Errorf("getting %s: %w", key, ErrNotFound)
	}
	return fmt.Errorf("getting %s: %w", key, err)
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing %s: %w", prefix, obj.Err)
		}
		keys = append(keys, strings.TrimPrefix(obj.Key, s.prefix))
	}
	sort.Strings(keys)
	return keys, nil
}

// Scan implements Store. It asks the store for pages of at most max keys
// (S3 answers at most 1,000 a request) and stops once it has max: a call
// costs max/1,000 requests, rounded up. A store that ignores StartAfter
// still gives the right keys (those not after after are skipped), at the
// cost of listing them.
func (s *S3) Scan(ctx context.Context, prefix, after string, max int) ([]ObjectInfo, error) {
	if max <= 0 {
		return nil, nil
	}
	// Stop minio-go's listing goroutine once we have enough.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true, MaxKeys: min(max, 1000)}
	if after != "" {
		opts.StartAfter = s.prefix + after
	}
	var out []ObjectInfo
	for obj := range s.client.ListObjects(ctx, s.bucket, opts) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing %s after %q: %w", prefix, after, obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if key <= after {
			continue // a store that ignores StartAfter
		}
		out = append(out, ObjectInfo{Key: key, Size: obj.Size, Modified: obj.LastModified})
		if len(out) == max {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil &&
		minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// Bucket is the store's bucket.
func (s *S3) Bucket() string { return s.bucket }
