package salvage_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/practable/lablog/internal/ops/subject"
	"github.com/practable/lablog/internal/publish/salvage"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

// A salvage (an import of a quarantined buffer) applies the tombstone
// filter as compaction does: the erased user's records are left out and
// counted, every other intact record is archived.
func TestSalvageLeavesOutErasedUsers(t *testing.T) {
	q, want := quarantined(t, func(t *testing.T, path string) bool { testkit.BreakInlineBucket(t, path, "tiny"); return true })
	root := openRoot(t)
	const erased = "u0003"
	rep, err := salvage.Salvage(context.Background(), root, q, salvage.Options{RowGroupRows: 1000,
		Filter: func(seq uint64, r frame.Record) (frame.Record, bool) {
			out, keep, _ := subject.Filter(seq, r, subject.One(erased))
			return out, keep
		}})
	if err != nil {
		t.Fatal(err)
	}
	got := testkit.ArchivedFrames(t, root.Path())
	var of, others int64
	for id, r := range want {
		if id.Stream == "tiny" {
			continue // in the broken bucket
		}
		if bytes.HasPrefix(r.Data, []byte(`{"user":"`+erased+`"`)) {
			of++
			if len(got[id]) != 0 {
				t.Errorf("%v of %s archived", id, erased)
			}
			continue
		}
		others++
		if len(got[id]) != 1 {
			t.Errorf("%v archived %d times", id, len(got[id]))
		}
	}
	if of == 0 || rep.Filtered != of || rep.Archived != others {
		t.Errorf("report %+v; %d records of %s, %d of others", rep, of, erased, others)
	}
}
