package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/record/frame"
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

// group is this buffer's group of stream's hour.
func group(db *DB, stream string, hour time.Time) Group {
	return Group{BufferID: db.ID(), Stream: stream, Hour: frame.Hour(hour)}
}

func scanAll(t *testing.T, db *DB, stream string, hour time.Time) []scanned {
	t.Helper()
	var out []scanned
	damaged, err := db.Scan(group(db, stream, hour), 0, ^uint64(0), func(seq uint64, r frame.Record) error {
		out = append(out, scanned{seq, r})
		return nil
	})
	if err != nil || len(damaged) > 0 {
		t.Fatalf("scan: %v, damaged %v", err, damaged)
	}
	return out
}

// hoursOf lists the hours of stream's groups with this buffer's identity.
func hoursOf(t *testing.T, db *DB, stream string) []time.Time {
	t.Helper()
	groups, err := db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, g := range groups {
		if g.Stream == stream && g.BufferID == db.ID() {
			out = append(out, g.Hour)
		}
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
	hours := hoursOf(t, db, "spin30")
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
	p, _ := db.Pending()
	if len(p) != 2 || p[0].Stream != "spin30" || p[0].Records != 3 || !p[0].Oldest.Equal(h14) || p[1].Records != 1 {
		t.Fatalf("pending = %+v", p)
	}
}

func TestSequenceSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Append([]frame.Record{rec("s", t0, "1"), rec("s", t0, "2")})
	if n, err := db.Settle(group(db, "s", t0), 1, 2); err != nil || n != 2 {
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
			fill(t, db, 5000)
			_ = db.Close()
			used := highWater(t, path)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			// Overwrite every page past the meta pages.
			_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, int(used-8192)), 8192)
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

// fill appends n realistic records over 7 streams in commits of 50.
func fill(t testing.TB, db *DB, n int) map[string][]frame.Record {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	out := map[string][]frame.Record{}
	var batch []frame.Record
	for i := range n {
		s := fmt.Sprintf("spin%02d", i%7)
		r := rec(s, t0, fmt.Sprintf(`{"user":"u%04d","t":%d,"payload":{"log":"voltage","data":%.6f}}`,
			rng.IntN(9999), 1764169198000+i*37, rng.Float64()*12))
		r.Sum = Sum(r.Data)
		out[s] = append(out[s], r)
		if batch = append(batch, r); len(batch) == 50 {
			if err := db.Append(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := db.Append(batch); err != nil {
		t.Fatal(err)
	}
	return out
}

// records counts the records of g that decode.
func records(db *DB, g Group) (int64, error) {
	var n int64
	_, err := db.Scan(g, 0, ^uint64(0), func(uint64, frame.Record) error { n++; return nil })
	return n, err
}

// highWater is the end of the pages in use of a closed buffer file.
func highWater(t *testing.T, path string) int64 {
	t.Helper()
	n, err := InUse(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSettleOnlyTouchesRange(t *testing.T) {
	db := openTest(t)
	var recs []frame.Record
	for i := range 10000 { // several blocks
		recs = append(recs, rec("s", t0.Add(-time.Minute), fmt.Sprint(i)))
	}
	recs = append(recs, rec("s", t0.Add(time.Hour), "next hour"), rec("t", t0, "other stream"))
	for len(recs) > 0 { // commits of different sizes: blocks of different sizes
		n := min(len(recs), 1+len(recs)%977)
		if err := db.Append(recs[:n]); err != nil {
			t.Fatal(err)
		}
		recs = recs[n:]
	}
	// A range that cuts blocks at both ends.
	n, err := db.Settle(group(db, "s", t0), 2, 9999)
	if err != nil || n != 9998 {
		t.Fatalf("settled %d, %v; want 9998", n, err)
	}
	got := scanAll(t, db, "s", frame.Hour(t0))
	if len(got) != 2 || got[0].seq != 1 || got[1].seq != 10000 || string(got[1].rec.Data) != "9999" {
		t.Fatalf("left %d records: %+v", len(got), got)
	}
	p, _ := db.Pending()
	if len(p) != 2 || p[0].Records != 3 || p[1].Records != 1 {
		t.Fatalf("pending = %+v", p)
	}
	if n, err := db.Settle(group(db, "s", t0), 1, 10000); err != nil || n != 2 {
		t.Fatalf("settled %d, %v; want the last 2", n, err)
	}
	if hours := hoursOf(t, db, "s"); len(hours) != 1 || !hours[0].Equal(frame.Hour(t0.Add(time.Hour))) {
		t.Fatalf("hours left = %v", hours)
	}
}

// TestSimulation drives the buffer with seeded random operations (appends
// of any size, clock jumps back and forth, settling random ranges, SetAside
// never needed, reopening) and compares it with an in-memory model.
func TestSimulation(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			path := filepath.Join(t.TempDir(), "buffer.db")
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close(); checkFile(t, path) })
			id := db.ID()
			type key struct {
				stream string
				hour   time.Time
			}
			model := map[key][]scanned{}
			next := map[string]uint64{}
			now := t0
			streams := []string{"spin30", "spin31", "pend-00"}
			for op := range 400 {
				switch rng.IntN(12) {
				case 0: // the clock jumps (NTP sync, or a bad RTC-less boot)
					now = now.Add(time.Duration(rng.IntN(7)-3) * time.Hour)
				case 1: // restart
					if err := db.Close(); err != nil {
						t.Fatal(err)
					}
					if db, err = Open(path, Options{}); err != nil {
						t.Fatal(err)
					}
					if db.ID() != id || db.Quarantined() != "" {
						t.Fatalf("op %d: reopened as %s (quarantined %q), want id %s", op, db.ID(), db.Quarantined(), id)
					}
				case 2, 3: // archive part of an hour
					var keys []key
					for k := range model {
						keys = append(keys, k)
					}
					if len(keys) == 0 {
						continue
					}
					slices.SortFunc(keys, func(a, b key) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
					k := keys[rng.IntN(len(keys))]
					list := model[k]
					i := rng.IntN(len(list))
					first, last := list[i].seq, list[i+rng.IntN(len(list)-i)].seq
					n, err := db.Settle(group(db, k.stream, k.hour), first, last)
					if err != nil {
						t.Fatal(err)
					}
					var kept []scanned
					for _, e := range list {
						if e.seq < first || e.seq > last {
							kept = append(kept, e)
						}
					}
					if int(n) != len(list)-len(kept) {
						t.Fatalf("op %d: settled %d, model says %d", op, n, len(list)-len(kept))
					}
					model[k] = kept
					if len(kept) == 0 {
						delete(model, k)
					}
				default:
					var recs []frame.Record
					for range rng.IntN(200) + 1 {
						now = now.Add(time.Duration(rng.IntN(20_000)) * time.Millisecond)
						s := streams[rng.IntN(len(streams))]
						r := rec(s, now, fmt.Sprintf(`{"op":%d,"v":%d}`, op, rng.IntN(1000)))
						r.ClockSynced = rng.IntN(2) == 0
						recs = append(recs, r)
						next[s]++
						k := key{s, frame.Hour(now)}
						r.Sum = Sum(r.Data)
						model[k] = append(model[k], scanned{next[s], r})
					}
					if err := db.Append(recs); err != nil {
						t.Fatal(err)
					}
				}
			}
			var total int
			for k, want := range model {
				got := scanAll(t, db, k.stream, k.hour)
				if len(got) != len(want) {
					t.Fatalf("%v: %d records, model has %d", k, len(got), len(want))
				}
				for i := range want {
					if got[i].seq != want[i].seq || !reflect.DeepEqual(got[i].rec, want[i].rec) {
						t.Fatalf("%v #%d: got %+v, want %+v", k, i, got[i], want[i])
					}
				}
				total += len(want)
			}
			groups, _ := db.Groups()
			var counted int64
			for _, g := range groups {
				if _, ok := model[key{g.Stream, g.Hour}]; !ok {
					t.Fatalf("buffer has group %v the model does not", g)
				}
				counted += g.Records
			}
			if counted != int64(total) {
				t.Fatalf("running counts say %d records, model has %d", counted, total)
			}
		})
	}
}

// A buffer written by a newer lablog (a downgrade) is refused with
// ErrNewerFormat and left exactly as it was: it is sound, only newer, so
// quarantining it would strand its records.
func TestNewerFormatIsRefusedNotQuarantined(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Append([]frame.Record{rec("s", t0, "kept")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(metaBucket).Put(keyFormat, []byte{FormatVersion + 1})
	})
	if cerr := raw.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	db, err = Open(path, Options{})
	if !errors.Is(err, ErrNewerFormat) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("Open of a format %d buffer: %v, want ErrNewerFormat", FormatVersion+1, err)
	}
	for _, want := range []string{path, fmt.Sprintf("buffer format %d", FormatVersion+1), fmt.Sprintf("reads format %d at most", FormatVersion)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the newer buffer was changed by the refused Open")
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) > 0 {
		t.Errorf("the newer buffer was quarantined: %v", aside)
	}
}

// LastSeqs reports the last seq given out in the streams of a prefix, and
// keeps reporting it once the records are settled (moved to the archive).
func TestLastSeqs(t *testing.T) {
	db := openTest(t)
	if err := db.Append([]frame.Record{rec("addlog-a", t0, "1"), rec("addlog-a", t0, "2"), rec("addlog-b", t0, "3"), rec("addlog", t0, "4"), rec("spin30", t0, "5")}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Settle(group(db, "addlog-a", t0), 1, 2); err != nil {
		t.Fatal(err)
	}
	got, err := db.LastSeqs("addlog-")
	if want := map[string]uint64{"addlog-a": 2, "addlog-b": 1}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LastSeqs = %v, %v; want %v", got, err, want)
	}
}

// A full batch (the writer behind) is compressed at the faster level; its
// records come back byte-exact and its blocks are smaller than their
// records, as a normal commit's are.
func TestFullBatchRoundTrips(t *testing.T) {
	db := openTest(t)
	recs := make([]frame.Record, maxBatch)
	raw := 0
	for i := range recs {
		data := fmt.Sprintf(`{"user":"u%d","t":%d,"type":"log","payload":{"event":"click","x":%d}}`, i%37, 1764000000000+i, i*7)
		recs[i] = rec("spin30", t0, data)
		raw += len(data)
	}
	if err := db.Append(recs); err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, db, "spin30", frame.Hour(t0))
	if len(got) != len(recs) {
		t.Fatalf("scanned %d records, want %d", len(got), len(recs))
	}
	for i, e := range got {
		if !bytes.Equal(e.rec.Data, recs[i].Data) || e.seq != uint64(i+1) {
			t.Fatalf("#%d = seq %d %q, want %q", i, e.seq, e.rec.Data, recs[i].Data)
		}
	}
	stored := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(blocksBucket).Bucket([]byte("spin30")).ForEach(func(k, v []byte) error {
			if v[1] != codecZstd {
				t.Errorf("block %x stored with codec %d, want zstd", k, v[1])
			}
			stored += len(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored*3 > raw {
		t.Fatalf("%d bytes stored for %d raw: not compressed", stored, raw)
	}
}
