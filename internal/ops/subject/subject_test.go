package subject_test

import (
	"context"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/subject"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

var hour = time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)

// A joined frame keeps its other users' messages, byte for byte; a
// statement is dropped by its username, or by actor.id without one.
func TestFilterKeepsOtherUsersOfAFrame(t *testing.T) {
	a, b := `{"user":"a","t":1}`, `{"user":"b","payload":{"x":NaN}}`
	rec := frame.Record{Stream: "spin30", Kind: frame.Text, Data: []byte(a + b + a)}
	out, keep, n := subject.Filter(1, rec, subject.One("a"))
	if !keep || n != 2 || string(out.Data) != b {
		t.Fatalf("joined frame: keep %v, dropped %d, data %s", keep, n, out.Data)
	}
	if _, keep, n := subject.Filter(1, frame.Record{Kind: frame.Text, Data: []byte(a + a)}, subject.One("a")); keep || n != 2 {
		t.Fatalf("frame of a alone: keep %v dropped %d", keep, n)
	}
	byName := frame.Record{Kind: frame.Statement, Data: frame.StatementData(url.Values{"username": {"a"}}, []byte(`{"actor":{"id":"b"}}`))}
	byActor := frame.Record{Kind: frame.Statement, Data: frame.StatementData(url.Values{}, []byte(`{"actor":{"id":"a"}}`))}
	for name, r := range map[string]frame.Record{"username": byName, "actor.id": byActor} {
		if _, keep, n := subject.Filter(1, r, subject.One("a")); keep || n != 1 {
			t.Errorf("statement by %s: keep %v dropped %d", name, keep, n)
		}
	}
	// username wins over actor.id: this one is b's.
	if _, keep, _ := subject.Filter(1, byName, subject.One("b")); !keep {
		t.Error("a statement whose username is a was dropped for b")
	}
	ev := frame.Record{Kind: frame.Connected, Data: []byte("a")}
	if out, keep, n := subject.Filter(1, ev, subject.One("a")); !keep || n != 0 || string(out.Data) != "a" {
		t.Error("an event was changed")
	}
}

// writeWorld publishes files of several streams and hours under root and
// returns each user's rows.
func writeWorld(t *testing.T, root string, users int) map[string]int {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	for _, stream := range []string{"spin30", "pend00"} {
		for h := range 3 {
			recs := testkit.SubjectRecords(rng, stream, hour.Add(time.Duration(h)*time.Hour), 300, users, counts)
			w, err := archive.Create(root, stream, hour.Add(time.Duration(h)*time.Hour), archive.Options{BufferID: "00112233aabbccdd", RowGroupRows: 100})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range recs {
				if err := w.Add(archive.Entry{Seq: uint64(h*1000 + i + 1), Rec: r}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.Publish(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A file holding one user alone: it goes, nothing replaces it.
	w, err := archive.Create(root, "spin31", hour, archive.Options{BufferID: "00112233aabbccdd"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Add(archive.Entry{Seq: uint64(i + 1), Rec: frame.Record{Stream: "spin31", Received: hour, Kind: frame.Text, Data: []byte(`{"user":"u-007"}`)}})
		counts["u-007"]++
	}
	if _, err := w.Publish(); err != nil {
		t.Fatal(err)
	}
	return counts
}

// userRows counts each user's rows under root, reading the files.
func userRows(t *testing.T, root string) map[string]int {
	t.Helper()
	files, err := archive.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range files {
		if _, err := archive.ScanMessages(f.Path, func(r *archive.MessageRow) error {
			if r.User != nil {
				got[*r.User]++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func TestEraseRewritesEveryFileAndSignsTheReport(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	want := writeWorld(t, root, 20)
	const victim = "u-007"
	if want[victim] < 10 {
		t.Fatalf("the world has %d rows of %s", want[victim], victim)
	}
	before, _ := archive.Files(root)
	path, rep, err := subject.Erase(context.Background(), victim, subject.Options{DataDir: dir, Archive: root, Require: archive.RequireNone, RowGroupRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := userRows(t, root)
	if got[victim] != 0 {
		t.Errorf("%d rows of %s left", got[victim], victim)
	}
	delete(want, victim)
	for u, n := range want {
		if got[u] != n {
			t.Errorf("%s: %d rows, want %d", u, got[u], n)
		}
	}
	if n, problems := archive.VerifyTree(root); len(problems) > 0 || n == 0 {
		t.Fatalf("verify: %d files, %v", n, problems)
	}
	after, _ := archive.Files(root)
	if len(rep.Files) != len(before) || len(after) != len(before)-1 {
		t.Errorf("report lists %d files; %d files before, %d after", len(rep.Files), len(before), len(after))
	}
	for _, f := range rep.Files {
		if f.Old == f.New || !f.Done || f.OldSHA256 == "" || (f.New != "") != (f.NewSHA256 != "") || f.NewRows != f.OldRows-f.Rows {
			t.Errorf("report entry %+v", f)
		}
		if _, err := os.Stat(filepath.Join(root, f.Old)); err == nil {
			t.Errorf("%s is still there", f.Old)
		}
	}
	if _, err := subject.VerifyReport(path, filepath.Join(dir, subject.PubKeyFile)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, subject.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	body, _ := os.ReadFile(path)
	if strings.Contains(string(body), victim) {
		t.Error("the report names the user in clear")
	}
	// Altered by one byte, the report no longer verifies.
	body[len(body)/2] ^= 1
	os.WriteFile(path, body, 0o600)
	if _, err := subject.VerifyReport(path, filepath.Join(dir, subject.PubKeyFile)); err == nil {
		t.Error("an altered report verified")
	}
	ts, err := subject.LoadTombstones(filepath.Join(dir, subject.TombstoneFile))
	if err != nil || !ts[subject.Hash(victim)] || len(ts) != 1 {
		t.Errorf("tombstones %v %v", ts, err)
	}
	if _, err := os.Stat(filepath.Join(dir, subject.JournalFile)); err == nil {
		t.Error("the journal stayed")
	}
	// A second user erased from rewritten files: the revision goes up.
	if _, _, err := subject.Erase(context.Background(), "u-003", subject.Options{DataDir: dir, Archive: root, Require: archive.RequireNone}); err != nil {
		t.Fatal(err)
	}
	if n, problems := archive.VerifyTree(root); len(problems) > 0 || n == 0 {
		t.Fatalf("verify after the second erasure: %d files, %v", n, problems)
	}
	if got := userRows(t, root); got["u-003"] != 0 || got["u-004"] != want["u-004"] {
		t.Errorf("after the second erasure: u-003 %d, u-004 %d (want %d)", got["u-003"], got["u-004"], want["u-004"])
	}
}
