package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/envtestutil"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

const (
	archivedNS   = "team-a"
	archivedName = "hello"
	oldID        = "0b7c2f8e-old"
	newID        = "0b7c2f8e-new"
)

// archivedActor is an archive on a real S3 server (versitygw): the
// fixture chain of actorDir uploaded in two segments by two epochs (a
// move), under id newID, and an older Actor of the same name (oldID) with
// a one-event history. The environment points the CLI at the server.
type archivedActor struct {
	srv    *s3test.Server
	st     *objstore.S3
	bucket string
	events []chain.Event
	head   chain.Hash
	// second is epoch 2's segment (to damage).
	second archive.Segment
}

func newArchivedActor(t *testing.T) *archivedActor {
	t.Helper()
	srv := s3test.Start(t)
	st := srv.Bucket(t, "installs/prod")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	ctx := t.Context()
	dir, head := actorDir(t)
	a := &archivedActor{srv: srv, st: st, bucket: st.Bucket(), head: head}
	var recs [][]byte
	if err := chain.ReadFile(filepath.Join(dir, chain.FileName), func(e chain.Event) error {
		e.Data = bytes.Clone(e.Data)
		a.events = append(a.events, e)
		recs = append(recs, chain.EncodeRecord(&e))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for epoch, seg := range [][]byte{bytes.Join(recs[:2], nil), bytes.Join(recs[2:], nil)} {
		w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: newID, Epoch: int64(epoch + 1), Host: "host", Node: "node"})
		if err != nil {
			t.Fatal(err)
		}
		if a.second, err = w.Append(ctx, seg, archive.State{}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: oldID, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(ctx, recs[0], archive.State{}); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{oldID, newID} {
		if err := archive.PutIndex(ctx, st, archive.IndexEntry{Namespace: archivedNS, Name: archivedName, ActorID: id, Created: created}); err != nil {
			t.Fatal(err)
		}
		created = created.Add(time.Hour)
	}
	return a
}

func (a *archivedActor) url(tail string) string {
	return "s3://" + a.bucket + "/installs/prod/" + tail
}

// Verify reads the whole history through the name index (the newest id)
// or by id, across the two epochs, and checks where it ends.
func TestChainVerifyArchive(t *testing.T) {
	a := newArchivedActor(t)
	byName := a.url(archivedNS + "/" + archivedName)
	tests := map[string]struct {
		args    []string
		code    int
		want    []string
		wantNot []string
		wantErr string
	}{
		"by name, the newest id": {
			args: []string{byName, "--path-style"},
			want: []string{"actor id " + newID, "intact: 4 events in 2 segments over epochs 1, 2", "head " + a.head.String(), "length 4", "had 2 ids", oldID},
		},
		"by name, an older id": {
			args: []string{byName, "--path-style", "--actor-id", oldID},
			want: []string{"actor id " + oldID, "intact: 1 events in 1 segments over epochs 1", "length 1"},
		},
		"by id": {
			args:    []string{a.url("id/" + newID), "--path-style"},
			want:    []string{"intact: 4 events", "head " + a.head.String()},
			wantNot: []string{"had 2 ids"},
		},
		"ends at the expected head": {
			args: []string{byName, "--path-style", "--expect-head", a.head.String()},
			want: []string{"ends at the expected head " + a.head.Short()},
		},
		"goes past the expected head": {
			args: []string{byName, "--path-style", "--expect-head", a.events[1].Hash.String()},
			code: exitBroken, want: []string{"NOT AT THE EXPECTED HEAD: goes 2 events past", "its event 1"},
		},
		"behind the expected head": {
			args: []string{byName, "--path-style", "--actor-id", oldID, "--expect-head", a.head.String()},
			code: exitBroken, want: []string{"is not among the archive's events: the archive is behind it"},
		},
		"an id the name never had": {
			args: []string{byName, "--path-style", "--actor-id", "someone-else"}, code: exitUnreadable, wantErr: "never had the id someone-else",
		},
		"a name not in the index": {
			args: []string{a.url(archivedNS + "/nobody"), "--path-style"}, code: exitUnreadable, wantErr: "has no actor team-a/nobody",
		},
		"an id with no history": {
			args: []string{a.url("id/no-such-actor"), "--path-style"}, code: exitUnreadable, wantErr: "holds no history",
		},
		"not an s3 URL": {
			args: []string{"s3://" + a.bucket, "--path-style"}, code: exitUnreadable, wantErr: "want s3://BUCKET/PREFIX/NAMESPACE/NAME",
		},
		"a bad expected head": {
			args: []string{byName, "--path-style", "--expect-head", "abc"}, code: exitUnreadable, wantErr: "--expect-head",
		},
		"archive flags on a file": {
			args: []string{"no-such-file", "--expect-head", a.head.String()}, code: exitUnreadable, wantErr: "applies to an archive",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := runCLI(t, append([]string{"chain", "verify"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s%s", w, out, errOut)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("output says %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("stderr does not say %q:\n%s", tc.wantErr, errOut)
			}
			if strings.Contains(out+errOut, a.srv.SecretKey) {
				t.Error("the output holds the secret key")
			}
		})
	}
}

// A damaged segment is exit 1, naming the object; the store being down is
// exit 2.
func TestChainVerifyArchiveDamagedAndDown(t *testing.T) {
	a := newArchivedActor(t)
	key := archive.SegmentKey(newID, 2, &a.second)
	b, err := a.st.Get(context.Background(), key, a.second.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := a.st.Put(context.Background(), key, bytes.NewReader(b), int64(len(b)), false); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "chain", "verify", "--path-style", a.url(archivedNS+"/"+archivedName))
	if code != exitBroken || !strings.Contains(out, "damaged") || !strings.Contains(errOut, "does not verify") || !strings.Contains(errOut, key) {
		t.Fatalf("damaged segment: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "chain", "show", "--path-style", a.url("id/"+newID))
	if code != exitBroken || !strings.Contains(out, "SEQ") {
		t.Fatalf("show of a damaged history: exit %d (want 1, after the intact segment's events)\n%s%s", code, out, errOut)
	}
	a.srv.Stop()
	_, errOut, code = runCLI(t, "chain", "verify", "--path-style", a.url("id/"+oldID))
	if code != exitUnreadable {
		t.Fatalf("store down: exit %d, want 2\n%s", code, errOut)
	}
}

// Show prints the archived events as it prints a local file's.
func TestChainShowArchive(t *testing.T) {
	a := newArchivedActor(t)
	dir, _ := actorDir(t)
	for _, asJSON := range []bool{false, true} {
		args := []string{"chain", "show"}
		if asJSON {
			args = append(args, "--json")
		}
		local, _, code := runCLI(t, append(args, dir)...)
		if code != 0 {
			t.Fatalf("local show: exit %d", code)
		}
		remote, errOut, code := runCLI(t, append(args, "--path-style", a.url(archivedNS+"/"+archivedName))...)
		if code != 0 || remote != local {
			t.Fatalf("show s3:// (json %v): exit %d\n%s\nwant the local file's output:\n%s%s", asJSON, code, remote, local, errOut)
		}
		if !strings.Contains(errOut, "had 2 ids") {
			t.Errorf("stderr does not note the other id:\n%s", errOut)
		}
		if asJSON {
			var e struct{ Seq uint64 }
			lines := strings.Split(strings.TrimSpace(remote), "\n")
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil || e.Seq != 3 || len(lines) != 4 {
				t.Fatalf("json lines %q: %v", lines, err)
			}
		}
	}
}

// With a kubeconfig, verify compares the end with the Actor's
// status.chain: at its head; behind it (by how many events); and not at
// all when the Actor of that name now has another id, or is gone.
func TestChainVerifyArchiveAgainstStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	a := newArchivedActor(t)
	env := envtestutil.Start(t)
	kubeconfig := env.Kubeconfig(t)
	ns := env.Namespace(t)
	ctx := t.Context()
	actor := &v1alpha1.Actor{
		ObjectMeta: metav1.ObjectMeta{Name: archivedName, Namespace: ns},
		Spec:       v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{Image: "registry.example/actors/hello:v1"}},
	}
	if err := env.Client.Create(ctx, actor); err != nil {
		t.Fatal(err)
	}
	// The archive's index names the Actor in this test's namespace.
	if err := archive.PutIndex(ctx, a.st, archive.IndexEntry{Namespace: ns, Name: archivedName, ActorID: newID, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	byName := a.url(ns + "/" + archivedName)
	setStatus := func(id string, head chain.Hash, length int64) {
		t.Helper()
		actor.Status.ActorID = id
		actor.Status.Chain = &v1alpha1.ChainStatus{Head: head.String(), HeadShort: head.String()[:12], Length: length}
		if err := env.Client.Status().Update(ctx, actor); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(wantCode int, want ...string) {
		t.Helper()
		out, errOut, code := runCLI(t, "chain", "verify", "--path-style", "--kubeconfig", kubeconfig, byName)
		if code != wantCode {
			t.Fatalf("exit %d, want %d\n%s%s", code, wantCode, out, errOut)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("output does not say %q:\n%s%s", w, out, errOut)
			}
		}
	}
	setStatus(newID, a.head, 4)
	verify(0, "ends at the expected head "+a.head.Short()+" (from Actor "+ns+"/"+archivedName+"'s status)")

	// The host went on and its node died before it uploaded 3 events.
	var later chain.Hash
	later[0] = 0xab
	setStatus(newID, later, 7)
	verify(exitBroken, "BEHIND Actor "+ns+"/"+archivedName+"'s status by 3 events", "ends at length 4")

	// The status lags the archive: no failure.
	setStatus(newID, a.events[2].Hash, 3)
	verify(0, "goes 1 events past the expected head", "the status is older than the archive")

	setStatus("another-id", a.head, 4)
	verify(0, `is now actor id "another-id"`)

	if err := env.Client.Delete(ctx, actor); err != nil {
		t.Fatal(err)
	}
	verify(0, "does not exist (any more)")
}
