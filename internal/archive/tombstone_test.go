package archive

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// A tombstone round-trips; Expire removes the actor's archive, its name
// entry and the tombstone, and nothing of another id under the same name;
// objects under deleted/ that are not tombstones are reported, never acted
// on.
func TestTombstonesAndExpire(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	const other = "0b7c2f8e-new-id"
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, id := range []string{actorID, other} {
		w := mustClaim(t, st, id, 1)
		c := &actorChain{}
		cut := 0
		c.start("0")
		mustAppend(t, w, c.cut(&cut), c.state)
		if err := PutIndex(ctx, st, IndexEntry{Namespace: "team-a", Name: "counter", ActorID: id, Created: created}); err != nil {
			t.Fatal(err)
		}
		created = created.Add(time.Hour)
	}
	deleted := time.Date(2026, 2, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	ts := Tombstone{ActorID: actorID, Namespace: "team-a", Name: "counter", UID: "uid-1", DeletedAt: deleted}
	if err := PutTombstone(ctx, st, ts); err != nil {
		t.Fatal(err)
	}
	if err := PutTombstone(ctx, st, ts); err != nil {
		t.Fatalf("writing a tombstone again: %v", err)
	}
	put(t, st, TombstoneKey("not-json"), []byte("{"))
	b, err := st.Get(ctx, TombstoneKey(actorID), maxTombstoneBytes)
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, TombstoneKey("elsewhere"), b) // content names another id than its key

	good, bad, err := Tombstones(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 1 || good[0].ActorID != actorID || !good[0].DeletedAt.Equal(deleted) || good[0].Format != TombstoneFormat {
		t.Fatalf("tombstones %+v", good)
	}
	if len(bad) != 2 || !strings.Contains(bad[0].Err.Error(), "holds the tombstone of") || bad[1].Key != TombstoneKey("not-json") {
		t.Fatalf("bad tombstones %+v", bad)
	}

	n, err := Expire(ctx, st, good[0])
	if err != nil || n < 4 {
		t.Fatalf("expired %d objects: %v", n, err)
	}
	if _, err := Resolve(ctx, st, actorID); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("the expired archive: %v, want ErrNoHistory", err)
	}
	if _, err := Verify(ctx, st, other); err != nil {
		t.Fatalf("the same name's other id: %v", err)
	}
	ids, err := LookupName(ctx, st, "team-a", "counter")
	if err != nil || len(ids) != 1 || ids[0].ActorID != other {
		t.Fatalf("the name's ids after the expiry: %+v %v", ids, err)
	}
	good, bad, err = Tombstones(ctx, st)
	if err != nil || len(good) != 0 || len(bad) != 2 {
		t.Fatalf("after the expiry: %+v %+v %v", good, bad, err)
	}
	if n, err := Expire(ctx, st, ts); err != nil || n != 2 {
		t.Fatalf("expiring again: %d objects, %v", n, err)
	}
}

func TestTombstoneRefuses(t *testing.T) {
	ok := Tombstone{Format: TombstoneFormat, ActorID: actorID, Namespace: "ns", Name: "a", DeletedAt: time.Unix(1e9, 0).UTC()}
	cases := map[string]func(*Tombstone){
		"another format": func(t *Tombstone) { t.Format = "v0" },
		"a bad id":       func(t *Tombstone) { t.ActorID = "../x" },
		"a bad name":     func(t *Tombstone) { t.Name = "A/B" },
		"no time":        func(t *Tombstone) { t.DeletedAt = time.Time{} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			ts := ok
			mutate(&ts)
			if err := ts.validate(); err == nil {
				t.Fatalf("%+v accepted", ts)
			}
		})
	}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeTombstone(bytes.Repeat([]byte(" "), maxTombstoneBytes+1)); err == nil {
		t.Fatal("an oversized tombstone decoded")
	}
}

// HasTombstone answers yes only for a tombstone that names the id, no when
// there is none, and refuses to guess about an object that is not one.
func TestHasTombstone(t *testing.T) {
	_, st := newStore(t)
	ctx := testCtx(t)
	if err := PutTombstone(ctx, st, Tombstone{ActorID: actorID, Namespace: "ns", Name: "a", DeletedAt: time.Unix(1e9, 0)}); err != nil {
		t.Fatal(err)
	}
	b, err := st.Get(ctx, TombstoneKey(actorID), maxTombstoneBytes)
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, TombstoneKey("elsewhere"), b)
	put(t, st, TombstoneKey("not-json"), []byte("{"))
	tests := map[string]struct {
		id      string
		want    bool
		wantErr string
	}{
		"deleted":         {id: actorID, want: true},
		"live":            {id: "0b7c2f8e-live"},
		"another id's":    {id: "elsewhere", wantErr: "holds the tombstone of " + actorID},
		"not a tombstone": {id: "not-json", wantErr: "decoding tombstone"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := HasTombstone(ctx, st, tc.id)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("HasTombstone(%s) = %v, %v; want an error with %q", tc.id, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("HasTombstone(%s) = %v, %v; want %v", tc.id, got, err, tc.want)
			}
		})
	}
}
