package buffer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/record/frame"
)

// ScanGroups reads the groups kept, tells fn each record's group, passes
// over and counts damaged blocks, and says the group it stopped in.
func TestScanGroups(t *testing.T) {
	db := openTest(t)
	h15 := t0.Add(time.Hour)
	if err := db.Append([]frame.Record{rec("spin30", t0, `{"a":1}`), rec("spin31", t0, `{"b":1}`), rec("spin30", h15, `{"a":2}`)}); err != nil {
		t.Fatal(err)
	}
	var got []string
	collect := func(g Group, seq uint64, r frame.Record) error {
		got = append(got, fmt.Sprintf("%s %s %d %s", g.Stream, g.Hour.Format("15"), seq, r.Data))
		return nil
	}
	n, err := db.ScanGroups(func(g Group) bool { return g.Stream == "spin30" }, collect)
	want := []string{
		fmt.Sprintf(`spin30 %s 1 {"a":1}`, frame.Hour(t0).Format("15")),
		fmt.Sprintf(`spin30 %s 2 {"a":2}`, frame.Hour(h15).Format("15")),
	}
	if err != nil || n != 0 || !slices.Equal(got, want) {
		t.Fatalf("spin30 only: %d damaged, %v, read %q; want %q", n, err, got, want)
	}

	// Damage spin31's block: it is passed over and counted, the rest read.
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b := streamBucket(tx, db.keyOf(group(db, "spin31", t0)))
		k, v := b.Cursor().First()
		v = slices.Clone(v)
		v[len(v)-1] ^= 0xff
		return b.Put(slices.Clone(k), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	n, err = db.ScanGroups(nil, collect)
	if err != nil || n != 1 || !slices.Equal(got, want) {
		t.Fatalf("all groups, spin31 damaged: %d damaged, %v, read %q; want 1 and %q", n, err, got, want)
	}

	stop := errors.New("stop")
	_, err = db.ScanGroups(nil, func(Group, uint64, frame.Record) error { return stop })
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "spin30") {
		t.Fatalf("fn's error: %v, want it wrapped with its group", err)
	}
}
