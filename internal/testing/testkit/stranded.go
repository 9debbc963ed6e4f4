package testkit

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

// RecordID names a record wherever it is: (buffer id, stream, seq).
type RecordID struct {
	BufferID, Stream string
	Seq              uint64
}

// FillBuffer creates a real buffer at path holding counts[stream] records
// of each stream, the first half of each stream's in hour and the rest in
// the next hour, committed 50 at a time as the writer would, and closes
// it. It returns the buffer's id and every record by identity.
func FillBuffer(t testing.TB, path string, hour time.Time, counts map[string]int) (string, map[RecordID]frame.Record) {
	t.Helper()
	db, err := buffer.Open(path, buffer.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := map[RecordID]frame.Record{}
	streams := make([]string, 0, len(counts))
	for s := range counts {
		streams = append(streams, s)
	}
	slices.Sort(streams)
	var batch []frame.Record
	for i := 0; ; i++ {
		added := false
		for _, s := range streams {
			n := counts[s]
			if i >= n {
				continue
			}
			added = true
			at := hour.Add(time.Duration(i*2/n) * time.Hour).Add(time.Duration(i) * time.Millisecond)
			data := fmt.Appendf(nil, `{"user":"u%04d","t":%d,"payload":{"log":"voltage","seq":%d}}`, i%97, at.UnixMilli(), i+1)
			r := frame.Record{Stream: s, Received: at, ClockSynced: true, Kind: frame.Text, Data: data, Sum: buffer.Sum(data)}
			want[RecordID{db.ID(), s, uint64(i + 1)}] = r
			if batch = append(batch, r); len(batch) == 50 {
				if err := db.Append(batch); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if !added {
			break
		}
	}
	if len(batch) > 0 {
		if err := db.Append(batch); err != nil {
			t.Fatal(err)
		}
	}
	id := db.ID()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return id, want
}

// BreakInlineBucket damages the bucket of stream in the closed buffer at
// path, a bucket small enough for bbolt to keep inline in its parent's
// page: the flags of its page header are zeroed, as a flipped byte on the
// card leaves them. Open quarantines such a file.
func BreakInlineBucket(t testing.TB, path, stream string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The key, the bucket header (root page 0: inline; sequence 0), then
	// the inline page's header: id 0, flags "leaf".
	pattern := append([]byte(stream), make([]byte, 16+8)...)
	pattern = append(pattern, 0x02, 0x00)
	n := 0
	for i := 0; ; {
		j := bytes.Index(b[i:], pattern)
		if j < 0 {
			break
		}
		at := i + j + len(pattern) - 2
		b[at] = 0 // every copy, live or freed: which one is live does not matter
		n++
		i = at
	}
	if n == 0 {
		t.Fatalf("no inline bucket %q in %s", stream, path)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// ArchivedFrames reads every file under root with the archive's verifying
// reader and returns each frame by identity, once per time it is archived.
func ArchivedFrames(t testing.TB, root string) map[RecordID][]frame.Record {
	t.Helper()
	files, err := archive.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	out := map[RecordID][]frame.Record{}
	for _, f := range files {
		meta, err := archive.ReadMeta(f.Path)
		if err == nil {
			_, err = archive.VerifyFrames(f.Path, func(seq uint64, kind frame.Kind, data []byte) error {
				id := RecordID{meta.BufferID, meta.Stream, seq}
				out[id] = append(out[id], frame.Record{Kind: kind, Data: bytes.Clone(data)})
				return nil
			})
		}
		if err != nil {
			t.Fatalf("archive file %s: %v", f.Path, err)
		}
	}
	return out
}
