package buffer

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/record/frame"
)

// mappedKiB is the resident size of this process's maps of path, from
// /proc/self/smaps.
func mappedKiB(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var kib int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a map's header line
			in = len(fields) >= 6 && fields[len(fields)-1] == path
			continue
		}
		if in && fields[0] == "Rss:" {
			n, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			kib += n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return kib
}

// TestReleaseMappedDropsWritersPages appends a few MiB of records, as the
// writer does, checks that the pages its transactions touched are resident,
// releases them, and checks that they left the RSS and that every record
// still reads back the same and appends still work.
func TestReleaseMappedDropsWritersPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	db, err := Open(path, Options{noSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := fill(t, db, 60000)
	before := mappedKiB(t, path)
	if before < 512 {
		t.Fatalf("appending left %d KiB of the buffer mapped: too little to measure", before)
	}
	if err := db.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	after := mappedKiB(t, path)
	t.Logf("mapped KiB after appends: %d, after release: %d", before, after)
	if after > before/8 {
		t.Errorf("after release %d KiB still mapped (was %d)", after, before)
	}
	// The pages come back from the page cache, unchanged.
	for s, recs := range want {
		got := scanAll(t, db, s, t0)
		if len(got) != len(recs) {
			t.Fatalf("%s: %d records read, want %d", s, len(got), len(recs))
		}
		for i, g := range got {
			if !bytes.Equal(g.rec.Data, recs[i].Data) {
				t.Fatalf("%s record %d: %q, want %q", s, i, g.rec.Data, recs[i].Data)
			}
		}
	}
	more := rec("spin00", t0, `{"user":"after"}`)
	if err := db.Append([]frame.Record{more}); err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, db, "spin00", t0)
	if last := got[len(got)-1].rec.Data; string(last) != `{"user":"after"}` {
		t.Errorf("last record after release %q", last)
	}
}
