package s3test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/objstore"
)

// The harness serves a real S3 API, and the Store behaves as the archive
// needs it to on it: whole objects, bounded reads, sorted listings under a
// prefix, idempotent deletes, and a restart that keeps the objects.
func TestServerServesTheStore(t *testing.T) {
	srv := Start(t)
	st := srv.Bucket(t, "some/prefix")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	put := func(key, body string) {
		t.Helper()
		if err := st.Put(ctx, key, strings.NewReader(body), int64(len(body)), false); err != nil {
			t.Fatal(err)
		}
	}
	put("b/2", "two")
	put("b/1", "one")
	put("a", "aaa")
	if got, err := st.Get(ctx, "b/1", 3); err != nil || string(got) != "one" {
		t.Fatalf("get b/1: %q %v", got, err)
	}
	if _, err := st.Get(ctx, "b/1", 2); !errors.Is(err, objstore.ErrTooLarge) {
		t.Fatalf("get of 3 bytes bounded to 2: %v, want ErrTooLarge", err)
	}
	if _, err := st.Get(ctx, "missing", 10); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("get missing: %v, want ErrNotFound", err)
	}
	if keys, err := st.List(ctx, "b/"); err != nil || strings.Join(keys, ",") != "b/1,b/2" {
		t.Fatalf("list b/: %v %v", keys, err)
	}
	// The prefix is the store's: another prefix in the same bucket sees nothing.
	other, err := objstore.New(srv.Config(bucketOf(t, st), "other"))
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := other.List(ctx, ""); err != nil || len(keys) != 0 {
		t.Fatalf("list under another prefix: %v %v", keys, err)
	}
	// Scan pages through a prefix after a key, with sizes and times.
	before := time.Now().Add(-time.Minute)
	put("b/3", "three")
	for _, c := range []struct {
		after string
		max   int
		want  string
	}{{"", 2, "b/1,b/2"}, {"b/1", 5, "b/2,b/3"}, {"b/3", 5, ""}, {"", 0, ""}} {
		infos, err := st.Scan(ctx, "b/", c.after, c.max)
		var keys []string
		for _, o := range infos {
			keys = append(keys, o.Key)
			if o.Size != 3 && o.Size != 5 || o.Modified.Before(before) || o.Modified.After(time.Now().Add(time.Minute)) {
				t.Fatalf("scan: %+v: size or time wrong", o)
			}
		}
		if err != nil || strings.Join(keys, ",") != c.want {
			t.Fatalf("scan b/ after %q, max %d: %v %v, want %s", c.after, c.max, keys, err, c.want)
		}
	}
	put("b/1", "uno")
	if got, _ := st.Get(ctx, "b/1", 10); !bytes.Equal(got, []byte("uno")) {
		t.Fatalf("a put replaces: got %q", got)
	}
	if err := st.Delete(ctx, "b/1"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "b/1"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}

	srv.Stop()
	if _, err := st.Get(ctx, "a", 10); err == nil {
		t.Fatal("a stopped server answered")
	}
	srv.Restart()
	if got, err := st.Get(ctx, "a", 10); err != nil || string(got) != "aaa" {
		t.Fatalf("after a restart: %q %v", got, err)
	}
}

func bucketOf(t *testing.T, st *objstore.S3) string {
	t.Helper()
	return st.Bucket()
}
