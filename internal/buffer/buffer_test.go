package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/frame"
)

// openTest opens a fresh buffer and, after the test, checks the file's page
// invariants with bbolt's own checker.
func openTest(t *testing.T) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "buffer.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = db.Close()
		checkFile(t, path)
	})
	return db
}

func checkFile(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("reopen %s: %v", path, err)
		return
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
}

var t0 = time.Date(2026, 11, 26, 14, 59, 58, 0, time.UTC)

func rec(stream string, at time.Time, data string) frame.Record {
	return frame.Record{Stream: stream, Received: at, ClockSynced: true, Kind: frame.Text, Data: []byte(data)}
}

type scanned struct {
	seq uint64
	rec frame.Record
}

func scanAll(t *testing.T, db *DB, stream string, hour time.Time) []scanned {
	t.Helper()
	var out []scanned
	if err := db.Scan(stream, hour, func(seq uint64, r frame.Record) error {
		out = append(out, scanned{seq, r})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendScanByHour(t *testing.T) {
	db := openTest(t)
	err := db.Append([]frame.Record{
		rec("spin30", t0, `{"a":1}`),
		rec("spin31", t0, `{"b":1}`),
		rec("spin30", t0.Add(3*time.Second), `{"a":2}`), // next hour
		{Stream: "spin30", Received: t0.Add(time.Second), Kind: frame.Disconnected, Data: []byte("read: EOF")},
	})
	if err != nil {
		t.Fatal(err)
	}
	hours, err := db.Hours("spin30")
	if err != nil {
		t.Fatal(err)
	}
	h14, h15 := frame.Hour(t0), frame.Hour(t0).Add(time.Hour)
	if len(hours) != 2 || !hours[0].Equal(h14) || !hours[1].Equal(h15) {
		t.Fatalf("hours = %v, want [%v %v]", hours, h14, h15)
	}
	got := scanAll(t, db, "spin30", h14)
	if len(got) != 2 || got[0].seq != 1 || string(got[0].rec.Data) != `{"a":1}` || got[1].seq != 3 ||
		got[1].rec.Kind != frame.Disconnected || !got[1].rec.Received.Equal(t0.Add(time.Second)) || got[1].rec.ClockSynced {
		t.Fatalf("scan of 14h = %+v", got)
	}
	if got := scanAll(t, db, "spin30", h15); len(got) != 1 || got[0].seq != 2 {
		t.Fatalf("scan of 15h = %+v", got)
	}
	streams, _ := db.Streams()
	if fmt.Sprint(streams) != "[spin30 spin31]" {
		t.Fatalf("streams = %v", streams)
	}
}

func TestSequenceSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Append([]frame.Record{rec("s", t0, "1"), rec("s", t0, "2")})
	if n, err := db.DeleteRange("s", frame.Hour(t0), 1, 2); err != nil || n != 2 {
		t.Fatalf("delete = %d, %v", n, err)
	}
	_ = db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.Append([]frame.Record{rec("s", t0, "3")})
	got := scanAll(t, db, "s", frame.Hour(t0))
	if len(got) != 1 || got[0].seq != 3 {
		t.Fatalf("after reopen got %+v, want seq 3: sequence numbers must never be reused", got)
	}
}

func TestLockedBufferFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("second open took %v", time.Since(start))
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a locked buffer must not be quarantined: %v", err)
	}
}

func TestCorruptBufferIsQuarantined(t *testing.T) {
	cases := map[string]func(path string) error{
		"garbage": func(path string) error {
			return os.WriteFile(path, bytes.Repeat([]byte("not a bbolt file "), 1000), 0o600)
		},
		"damaged pages": func(path string) error {
			db, err := Open(path, Options{})
			if err != nil {
				return err
			}
			var recs []frame.Record
			for i := range 5000 {
				recs = append(recs, rec(fmt.Sprintf("spin%02d", i%7), t0, fmt.Sprintf(`{"n":%d,"pad":"%0200d"}`, i, i)))
			}
			if err := db.Append(recs); err != nil {
				return err
			}
			used := db.Size() // pages in use; the file may be longer
			_ = db.Close()
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			// Overwrite pages in the middle of the tree, past the meta pages.
			_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, 64<<10), used/2)
			return err
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			if err := damage(path); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("open of corrupt buffer: %v, want a fresh buffer", err)
			}
			defer db.Close()
			q := db.Quarantined()
			if q == "" {
				t.Fatal("corrupt buffer not reported as quarantined")
			}
			if _, err := os.Stat(q); err != nil {
				t.Fatalf("quarantined file missing: %v", err)
			}
			if err := db.Append([]frame.Record{rec("s", t0, "x")}); err != nil {
				t.Fatalf("fresh buffer does not take records: %v", err)
			}
		})
	}
}

func TestDeleteRangeOnlyTouchesRange(t *testing.T) {
	db := openTest(t)
	var recs []frame.Record
	for i := range 10000 { // more than one chunk
		recs = append(recs, rec("s", t0.Add(-time.Minute), fmt.Sprint(i)))
	}
	recs = append(recs, rec("s", t0.Add(time.Hour), "next hour"), rec("t", t0, "other stream"))
	if err := db.Append(recs); err != nil {
		t.Fatal(err)
	}
	n, err := db.DeleteRange("s", frame.Hour(t0), 2, 9999)
	if err != nil || n != 9998 {
		t.Fatalf("deleted %d, %v; want 9998", n, err)
	}
	got := scanAll(t, db, "s", frame.Hour(t0))
	if len(got) != 2 || got[0].seq != 1 || got[1].seq != 10000 {
		t.Fatalf("left %d records: %+v", len(got), got)
	}
	p, _ := db.Pending()
	if len(p) != 2 || p[0].Records != 3 || p[1].Records != 1 {
		t.Fatalf("pending = %+v", p)
	}
}

// TestSimulation drives the buffer with seeded random operations, including
// clock jumps back and forth, and compares it with an in-memory model.
func TestSimulation(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			db := openTest(t)
			type key struct {
				stream string
				hour   time.Time
			}
			model := map[key][]scanned{}
			next := map[string]uint64{}
			now := t0
			streams := []string{"spin30", "spin31", "pend00"}
			for op := range 300 {
				switch rng.IntN(10) {
				case 0: // the clock jumps (NTP sync, or a bad RTC-less boot)
					now = now.Add(time.Duration(rng.IntN(7)-3) * time.Hour)
				case 1, 2: // archive part of an hour
					s := streams[rng.IntN(len(streams))]
					hours, err := db.Hours(s)
					if err != nil || len(hours) == 0 {
						continue
					}
					h := hours[rng.IntN(len(hours))]
					k := key{s, h}
					list := model[k]
					first, last := list[0].seq, list[rng.IntN(len(list))].seq
					n, err := db.DeleteRange(s, h, first, last)
					if err != nil {
						t.Fatal(err)
					}
					var kept []scanned
					for _, e := range list {
						if e.seq < first || e.seq > last {
							kept = append(kept, e)
						}
					}
					if n != len(list)-len(kept) {
						t.Fatalf("op %d: deleted %d, model says %d", op, n, len(list)-len(kept))
					}
					model[k] = kept
					if len(kept) == 0 {
						delete(model, k)
					}
				default:
					var recs []frame.Record
					for range rng.IntN(50) + 1 {
						now = now.Add(time.Duration(rng.IntN(60_000)) * time.Millisecond)
						s := streams[rng.IntN(len(streams))]
						r := rec(s, now, fmt.Sprintf(`{"op":%d}`, op))
						recs = append(recs, r)
						next[s]++
						k := key{s, frame.Hour(now)}
						model[k] = append(model[k], scanned{next[s], r})
					}
					if err := db.Append(recs); err != nil {
						t.Fatal(err)
					}
				}
			}
			for k, want := range model {
				got := scanAll(t, db, k.stream, k.hour)
				if len(got) != len(want) {
					t.Fatalf("%v: %d records, model has %d", k, len(got), len(want))
				}
				for i := range want {
					if got[i].seq != want[i].seq || !bytes.Equal(got[i].rec.Data, want[i].rec.Data) || !got[i].rec.Received.Equal(want[i].rec.Received) {
						t.Fatalf("%v #%d: got %+v, want %+v", k, i, got[i], want[i])
					}
				}
			}
			for _, s := range streams {
				hours, _ := db.Hours(s)
				for _, h := range hours {
					if _, ok := model[key{s, h}]; !ok {
						t.Fatalf("buffer has hour %v of %s the model does not", h, s)
					}
				}
			}
		})
	}
}

func TestHasRange(t *testing.T) {
	db := openTest(t)
	_ = db.Append([]frame.Record{rec("s", t0, "1"), rec("s", t0.Add(time.Hour), "2"), rec("s", t0, "3")})
	h := frame.Hour(t0)
	for _, c := range []struct {
		first, last uint64
		want        bool
	}{{1, 1, true}, {2, 2, false}, {2, 3, true}, {4, 9, false}, {1, 3, true}} {
		if got, err := db.HasRange("s", h, c.first, c.last); err != nil || got != c.want {
			t.Errorf("HasRange(%d,%d) = %v, %v; want %v", c.first, c.last, got, err, c.want)
		}
	}
	if got, _ := db.HasRange("nope", h, 1, 9); got {
		t.Error("HasRange on an unknown stream")
	}
}
