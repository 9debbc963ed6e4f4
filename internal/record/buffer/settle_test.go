package buffer

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/record/frame"
)

// fillBlocks appends n records of stream s in t0's hour in commits of
// different sizes (blocks of different sizes), then one in the next hour.
func fillBlocks(t *testing.T, db *DB, n int) {
	t.Helper()
	var recs []frame.Record
	for i := range n {
		recs = append(recs, rec("s", t0.Add(-time.Minute), fmt.Sprint("record ", i)))
	}
	recs = append(recs, rec("s", t0.Add(time.Hour), "next hour"))
	for len(recs) > 0 {
		k := min(len(recs), 1+len(recs)%397)
		if err := db.Append(recs[:k]); err != nil {
			t.Fatal(err)
		}
		recs = recs[k:]
	}
}

// settleMarks lists the marks of settles not yet complete.
func settleMarks(t *testing.T, db *DB) []string {
	t.Helper()
	var out []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(metaBucket).ForEach(func(k, _ []byte) error {
			if len(k) > len(keySettling) && string(k[:len(keySettling)]) == string(keySettling) {
				out = append(out, string(k))
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// afterSettle is what a test compares: what is left, the counts and the
// bytes the buffer believes it holds.
type afterSettle struct {
	Left    []scanned
	Pending []Pending
	Used    int64
}

func stateOf(t *testing.T, db *DB) afterSettle {
	t.Helper()
	p, err := db.Pending()
	if err != nil {
		t.Fatal(err)
	}
	return afterSettle{Left: scanAll(t, db, "s", frame.Hour(t0)), Pending: p, Used: db.Used()}
}

func withStepBytes(t *testing.T, n int) {
	old := settleStepBytes
	settleStepBytes = n
	t.Cleanup(func() { settleStepBytes = old })
}

// A settle in many steps leaves what one step leaves, ranges that cut
// blocks at both ends included, and no mark.
func TestSettleInStepsMatchesOneStep(t *testing.T) {
	settle := func(stepBytes int) (afterSettle, int64) {
		withStepBytes(t, stepBytes)
		db := openTest(t)
		fillBlocks(t, db, 6000)
		n, err := db.Settle(group(db, "s", t0), 3, 5990)
		if err != nil {
			t.Fatal(err)
		}
		if m := settleMarks(t, db); len(m) != 0 {
			t.Errorf("marks left after a complete settle: %q", m)
		}
		return stateOf(t, db), n
	}
	one, n1 := settle(1 << 30)
	many, n2 := settle(1) // every block a step
	if n1 != 5988 || n2 != n1 {
		t.Errorf("removed %d in one step, %d in many; want 5988", n1, n2)
	}
	if len(one.Left) != 12 || one.Left[0].seq != 1 || one.Left[2].seq != 5991 {
		t.Fatalf("one step left %d records, from %+v", len(one.Left), one.Left[0])
	}
	if !reflect.DeepEqual(one, many) {
		t.Errorf("one step left %+v\nmany steps left %+v", one, many)
	}
}

// A settle cut short between two steps (a failed commit, a kill) leaves a
// mark, and the rest is removed by FinishSettles (the compactor's next
// run) or by the next Open: never archived a second time.
func TestSettleCutShortIsFinished(t *testing.T) {
	needFailpoints(t)
	// The state of a settle done in one go, to compare with.
	ref := openTest(t)
	fillBlocks(t, ref, 6000)
	if _, err := ref.Settle(group(ref, "s", t0), 1, 6000); err != nil {
		t.Fatal(err)
	}
	want := stateOf(t, ref)

	for _, finish := range []string{"FinishSettles", "Open"} {
		t.Run(finish, func(t *testing.T) {
			withStepBytes(t, 2000)
			path := filepath.Join(t.TempDir(), "buffer.db")
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = db.Close(); checkFile(t, path) }()
			fillBlocks(t, db, 6000)
			disarm, err := failpoint.Arm(FailBetweenSettleSteps + ":error")
			if err != nil {
				t.Fatal(err)
			}
			n, err := db.Settle(group(db, "s", t0), 1, 6000)
			disarm()
			if !errors.Is(err, failpoint.ErrInjected) || n == 0 || n >= 6000 {
				t.Fatalf("settle cut after its first step: removed %d, %v; want some of 6000 and the injected error", n, err)
			}
			if m := settleMarks(t, db); len(m) != 1 {
				t.Fatalf("marks = %q; want the cut settle's", m)
			}
			if left := len(scanAll(t, db, "s", frame.Hour(t0))); left != 6000-int(n) {
				t.Fatalf("%d records left after removing %d of 6000", left, n)
			}
			switch finish {
			case "FinishSettles":
				err = db.FinishSettles()
			case "Open":
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				db, err = Open(path, Options{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if m := settleMarks(t, db); len(m) != 0 {
				t.Errorf("marks left after %s: %q", finish, m)
			}
			got := stateOf(t, db)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after %s: %+v\nwant %+v", finish, got, want)
			}
		})
	}
}
