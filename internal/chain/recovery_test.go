package chain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// smallChain writes a closed chain of n events and returns its bytes and the
// end offset of each record.
func smallChain(t *testing.T, n int) (raw []byte, ends []int64, heads []Hash) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []Kind{KindActorStart, KindLog, KindRuntimeOperation, KindMetric, KindCustom}
	for i := range n {
		h, err := c.Append(kinds[i%len(kinds)], fmt.Sprintf("op-%d", i), bytes.Repeat([]byte{'a' + byte(i)}, i*3))
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, h)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(len(Magic))
	for off < int64(len(raw)) {
		off += frameHeaderSize + int64(binary.BigEndian.Uint32(raw[off:]))
		ends = append(ends, off)
	}
	if len(ends) != n || off != int64(len(raw)) {
		t.Fatalf("framing walk found %d records ending at %d of %d bytes", len(ends), off, len(raw))
	}
	return raw, ends, heads
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A crash can cut the file anywhere: every cut must reopen as the longest
// whole prefix, report what it dropped, and accept new events after it.
func TestOpenRecoversEveryTornTail(t *testing.T) {
	raw, ends, heads := smallChain(t, 5)
	for cut := 0; cut < len(raw); cut++ {
		path := writeFile(t, raw[:cut])
		c, rec, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		whole, kept := 0, int64(len(Magic))
		for whole < len(ends) && ends[whole] <= int64(cut) {
			kept = ends[whole]
			whole++
		}
		if cut < len(Magic) {
			kept = 0
		}
		if rec.Events != uint64(whole) || rec.DroppedBytes != int64(cut)-kept {
			t.Fatalf("cut at %d: recovery %+v, want %d events, %d bytes dropped", cut, rec, whole, int64(cut)-kept)
		}
		if (rec.DroppedBytes > 0) != (rec.Reason != "") {
			t.Fatalf("cut at %d: reason %q with %d bytes dropped", cut, rec.Reason, rec.DroppedBytes)
		}
		head, n := c.Head()
		if n != uint64(whole) || (whole > 0 && head != heads[whole-1]) || (whole == 0 && !head.IsZero()) {
			t.Fatalf("cut at %d: head %s length %d", cut, head.Short(), n)
		}
		if _, err := c.Append(KindLog, "after", []byte("recovery")); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if rep, err := VerifyFile(path); err != nil || !rep.OK() || rep.Events != uint64(whole+1) {
			t.Fatalf("cut at %d: after recovery and one append: %+v %v", cut, rep, err)
		}
	}
}

func TestOpenCutsGarbageTails(t *testing.T) {
	raw, ends, _ := smallChain(t, 4)
	tests := map[string][]byte{
		"zeros":          make([]byte, 4096),
		"ones":           bytes.Repeat([]byte{0xff}, 100),
		"huge length":    {0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5},
		"plausible torn": raw[ends[0] : ends[1]-1],
	}
	for name, tail := range tests {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, append(append([]byte(nil), raw...), tail...))
			c, rec, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if rec.Events != 4 || rec.DroppedBytes != int64(len(tail)) || rec.Reason == "" {
				t.Fatalf("recovery %+v, want 4 events and %d bytes dropped", rec, len(tail))
			}
		})
	}
}

// Damage followed by valid records is not a torn tail: Open must refuse and
// leave the file alone.
func TestOpenRefusesDamageInTheMiddle(t *testing.T) {
	raw, ends, _ := smallChain(t, 5)
	tests := map[string]func(b []byte){
		"flipped data byte":   func(b []byte) { b[ends[1]+frameHeaderSize+60] ^= 0x40 },
		"flipped length byte": func(b []byte) { b[ends[2]+2] ^= 0x01 },
		"zeroed record":       func(b []byte) { clear(b[ends[1]:ends[2]]) },
	}
	for name, damage := range tests {
		t.Run(name, func(t *testing.T) {
			b := append([]byte(nil), raw...)
			damage(b)
			path := writeFile(t, b)
			_, _, err := Open(path, Options{})
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Open = %v, want a CorruptError", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
				t.Fatal("Open changed a file it refused")
			}
		})
	}
}

// A record whose checksum is right but whose content is wrong was not torn
// by a crash; even at the tail it must be an error, not a silent cut.
func TestOpenRefusesTamperedTail(t *testing.T) {
	raw, ends, _ := smallChain(t, 3)
	b := append([]byte(nil), raw...)
	last := b[ends[1]:]
	body := last[frameHeaderSize:]
	body[len(body)-HashSize-1] ^= 1 // last data byte
	binary.BigEndian.PutUint32(last[4:], crc32.Checksum(body, castagnoli))
	path := writeFile(t, b)
	_, _, err := Open(path, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Index != 2 {
		t.Fatalf("Open = %v, want a CorruptError at event 2", err)
	}
	rep, err := VerifyFile(path)
	if err != nil || rep.FirstBad != 2 || rep.Events != 2 {
		t.Fatalf("VerifyFile = %+v, %v", rep, err)
	}
}

// Done-when: any single flipped byte of a chain file is rejected, and Open
// never takes a damaged file for an intact one.
func TestEveryFlippedByteIsDetected(t *testing.T) {
	raw, _, _ := smallChain(t, 4)
	for i := range raw {
		for _, mask := range []byte{0xff, 0x01, 0x80} {
			b := append([]byte(nil), raw...)
			b[i] ^= mask
			path := writeFile(t, b)
			rep, err := VerifyFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.Reason == "" {
				t.Fatalf("byte %d ^ %#x: VerifyFile says intact: %+v", i, mask, rep)
			}
			c, rec, err := Open(path, Options{})
			if err == nil {
				if rec.DroppedBytes == 0 || rec.Events >= 4 {
					t.Fatalf("byte %d ^ %#x: Open accepted the damage silently: %+v", i, mask, rec)
				}
				c.Close()
			}
		}
	}
}

func TestVerifyReportsFirstBadEventAndReason(t *testing.T) {
	raw, ends, _ := smallChain(t, 4)
	relink := func(b []byte, rec int, mutate func(body []byte)) {
		start := int64(len(Magic))
		if rec > 0 {
			start = ends[rec-1]
		}
		body := b[start+frameHeaderSize : ends[rec]]
		mutate(body)
		binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	}
	tests := map[string]struct {
		damage func(b []byte)
		index  int64
		reason string
	}{
		"checksum": {func(b []byte) { b[ends[0]+frameHeaderSize+3] ^= 1 }, 1, "checksum mismatch"},
		"hash": {func(b []byte) {
			relink(b, 2, func(body []byte) { body[len(body)-1] ^= 1 })
		}, 2, "hash mismatch"},
		"parent": {func(b []byte) {
			relink(b, 3, func(body []byte) {
				body[9] ^= 1
				e, _ := decodeBody(body, nil)
				h := ComputeHash(&e)
				copy(body[len(body)-HashSize:], h[:])
			})
		}, 3, "broken link"},
		"seq": {func(b []byte) {
			relink(b, 1, func(body []byte) {
				body[7] = 5
				e, _ := decodeBody(body, nil)
				h := ComputeHash(&e)
				copy(body[len(body)-HashSize:], h[:])
			})
		}, 1, "seq 5, want 1"},
		"torn tail": {func(b []byte) {}, 4, "torn record"},
		"header":    {func(b []byte) { b[3] = 'X' }, 0, "bad file header"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := append([]byte(nil), raw...)
			tc.damage(b)
			if name == "torn tail" {
				b = append(b, raw[len(Magic):len(Magic)+20]...)
			}
			rep, err := Verify(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if rep.FirstBad != tc.index || !bytes.Contains([]byte(rep.Reason), []byte(tc.reason)) {
				t.Fatalf("report %+v, want first bad %d with %q", rep, tc.index, tc.reason)
			}
		})
	}
}

// A reader that meets an incomplete last record while the writer holds the
// chain treats it as in flight; without a writer it is a torn tail.
func TestReaderToleratesRecordInFlightOnlyWithAWriter(t *testing.T) {
	raw, _, _ := smallChain(t, 2)
	path := writeFile(t, append(append([]byte(nil), raw...), raw[len(Magic):len(Magic)+30]...))
	if rep, _ := VerifyFile(path); rep.OK() {
		t.Fatalf("no writer: torn tail accepted: %+v", rep)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := lockExclusive(f); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyFile(path)
	if err != nil || !rep.OK() || !rep.Writing || rep.Events != 2 {
		t.Fatalf("with a writer: %+v %v", rep, err)
	}
	if err := ReadFile(path, func(Event) error { return nil }); err != nil {
		t.Fatalf("ReadFile with a writer: %v", err)
	}
}

// What a crash leaves at the end of a chain is a prefix of the last write,
// or zeros where a block was never written: only that is cut. The last
// record damaged any other way, so that its event is still there whole
// (its length field grown or shrunk, its checksum changed) or one bit off
// its checksum, was written whole and damaged later: Open refuses it,
// names the damage, and leaves the file alone. Before, every one of the
// refused cases but the recomputed checksums was cut as a torn tail.
func TestOpenCutsOnlyWhatACrashCanTear(t *testing.T) {
	raw, ends, _ := smallChain(t, 3)
	last, end := int(ends[1]), int(ends[2])
	recomputeCRC := func(b []byte) {
		binary.BigEndian.PutUint32(b[last+4:], crc32.Checksum(b[last+frameHeaderSize:end], castagnoli))
	}
	setLength := func(b []byte, delta int) {
		binary.BigEndian.PutUint32(b[last:], uint32(int(binary.BigEndian.Uint32(b[last:]))+delta))
	}
	tests := map[string]struct {
		damage  func(b []byte) []byte
		refused string // the error says this; "" when the tail is cut
		dropped int    // bytes cut, when it is
	}{
		"cut inside the record":         {damage: func(b []byte) []byte { return b[:end-10] }, dropped: end - 10 - last},
		"cut inside the frame":          {damage: func(b []byte) []byte { return b[:last+5] }, dropped: 5},
		"never written: zeros":          {damage: func(b []byte) []byte { clear(b[last:end]); return b }, dropped: end - last},
		"never written: its last bytes": {damage: func(b []byte) []byte { clear(b[end-100 : end]); return b }, dropped: end - last},
		"length field grown": {damage: func(b []byte) []byte { setLength(b, 40); return b },
			refused: "torn record: 118 of 158 bytes at the end, but the record there holds a whole event (a 118-byte body whose hash and link verify): its frame was damaged after it was written"},
		"length field shrunk": {damage: func(b []byte) []byte { setLength(b, -4); return b },
			refused: "but the record there holds a whole event (a 118-byte body whose hash and link verify)"},
		"length field out of range": {damage: func(b []byte) []byte { b[last] ^= 0x40; return b },
			refused: "record length 1073741942 outside [93, 16778587], but the record there holds a whole event"},
		"checksum field changed": {damage: func(b []byte) []byte { b[last+5] ^= 0x21; return b },
			refused: "but the record there holds a whole event"},
		"one data bit flipped": {damage: func(b []byte) []byte { b[end-HashSize-2] ^= 0x08; return b },
			refused: "the record is whole and one bit from its checksum, a bit flipped after it was written"},
		"one hash bit flipped": {damage: func(b []byte) []byte { b[end-1] ^= 0x80; return b },
			refused: "one bit from its checksum"},
		"data changed, checksum recomputed": {damage: func(b []byte) []byte { b[end-HashSize-2] ^= 1; recomputeCRC(b); return b },
			refused: "event 2 (offset 245): hash mismatch"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := tc.damage(append([]byte(nil), raw...))
			path := writeFile(t, b)
			c, rec, err := Open(path, Options{})
			if tc.refused == "" {
				if err != nil || rec.Events != 2 || rec.DroppedBytes != int64(tc.dropped) {
					t.Fatalf("Open = %+v, %v; want the %d-byte tail cut", rec, err, tc.dropped)
				}
				c.Close()
				return
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Index != 2 || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("Open = %v; want a CorruptError at event 2 saying %q", err, tc.refused)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
				t.Fatal("Open changed a file it refused")
			}
		})
	}
}

// A chain that ends before the floor its caller knows it reached was cut
// back: Open refuses it, names both lengths, and leaves the file alone,
// even when what ends it looks like a torn tail. At or past the floor a
// torn tail is still cut.
func TestOpenRefusesAChainCutBelowItsFloor(t *testing.T) {
	raw, ends, _ := smallChain(t, 5) // lengths 1..5 end at ends[0..4]
	floor := Floor{Length: 4, Source: "the saved state state.a"}
	tests := map[string]struct {
		content []byte
		refused bool
		message string // with refused
		events  uint64 // without
	}{
		"emptied":                       {content: nil, refused: true, message: "holds no events, but the saved state state.a says it reached length 4 durably"},
		"cut to its header":             {content: raw[:len(Magic)], refused: true, message: "holds no events, but the saved state state.a says it reached length 4"},
		"cut at a record boundary":      {content: raw[:ends[2]], refused: true, message: "ends at length 3 (3 valid events), but the saved state state.a says it reached length 4"},
		"torn below the floor":          {content: raw[:ends[2]+10], refused: true, message: "ends at length 3 (3 valid events)"},
		"cut at the floor":              {content: raw[:ends[3]], events: 4},
		"torn past the floor":           {content: raw[:ends[4]-1], events: 4},
		"whole":                         {content: raw, events: 5},
		"header torn, no floor reached": {content: raw[:5], refused: true, message: "holds no events"},
	}
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), FileName)
		_, _, err := Open(path, Options{Floor: floor})
		var cb *CutBackError
		if !errors.As(err, &cb) || !cb.Missing || !strings.Contains(err.Error(), path+" does not exist, but the saved state state.a says it reached length 4") {
			t.Fatalf("Open = %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Open left a file it made: %v", err)
		}
	})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, tc.content)
			c, rec, err := Open(path, Options{Floor: floor})
			if !tc.refused {
				if err != nil || rec.Events != tc.events {
					t.Fatalf("Open = %+v, %v; want %d events", rec, err, tc.events)
				}
				c.Close()
				return
			}
			var cb *CutBackError
			if !errors.As(err, &cb) || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open = %v, want a CutBackError saying %q", err, tc.message)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.content) {
				t.Fatal("Open changed a file it refused")
			}
		})
	}
}

func TestObserveSeesEachEventOnce(t *testing.T) {
	raw, _, heads := smallChain(t, 4)
	path := writeFile(t, append(append([]byte(nil), raw...), raw[len(Magic):len(Magic)+20]...))
	var seen []Hash
	c, rec, err := Open(path, Options{Observe: func(e Event) { seen = append(seen, e.Hash) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rec.DroppedBytes != 20 || len(seen) != 4 {
		t.Fatalf("recovery %+v, observed %d events", rec, len(seen))
	}
	for i := range heads {
		if seen[i] != heads[i] {
			t.Fatalf("event %d observed as %s, want %s", i, seen[i].Short(), heads[i].Short())
		}
	}
}
