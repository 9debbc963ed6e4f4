package upload

import (
	"path/filepath"
	"testing"
)

// Uploaded answers from the target's ledger: what another target uploaded,
// or a torn last line, does not count.
func TestUploadedReadsTheTargetsLedger(t *testing.T) {
	root := t.TempDir()
	o := Options{Root: root, Endpoint: "http://127.0.0.1:1", Bucket: "b", Site: "s1"}
	other := o
	other.Bucket = "c"
	sum := "0000000000000000000000000000000000000000000000000000000000000000"
	rel := "stream=spin30/date=2026-11-26/spin30-20261126T14-0123456789abcdef-00000000000000000001-00000000000000000002.parquet"
	rel2 := "stream=spin30/date=2026-11-26/spin30-20261126T15-0123456789abcdef-00000000000000000003-00000000000000000004.parquet"
	l := ledger{dir: filepath.Join(root, LedgerDir, targetID(o.Endpoint, o.Bucket, o.Prefix, o.Site))}
	lo := ledger{dir: filepath.Join(root, LedgerDir, targetID(other.Endpoint, other.Bucket, other.Prefix, other.Site))}
	if err := l.add("2026-11-26", rel, sum); err != nil {
		t.Fatal(err)
	}
	if err := lo.add("2026-11-26", rel2, sum); err != nil {
		t.Fatal(err)
	}
	up := Uploaded(o)
	for r, want := range map[string]bool{rel: true, rel2: false} {
		if got, err := up(r); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", r, got, err, want)
		}
	}
	if got, err := Uploaded(other)(rel2); err != nil || !got {
		t.Errorf("other target: %v %v", got, err)
	}
	if _, err := up("spin30.parquet"); err == nil {
		t.Error("a path outside the layout was answered")
	}
}
