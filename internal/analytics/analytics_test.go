package analytics

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtures = "../../../shared/fixtures/learning-analytics"

// fixtureDir returns a folder of the shared fixtures, skipping the test
// when the fixtures are not beside the repository.
func fixtureDir(t *testing.T, sub string) string {
	t.Helper()
	dir := filepath.Join(fixtures, sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("fixtures missing: %v", err)
		}
		t.Skipf("fixtures missing: %v", err)
	}
	return dir
}

// For every comparison_logs/X.json the matrix is comparison_graphs/X.csv,
// byte for byte.
func TestComparisonLogsGiveComparisonGraphs(t *testing.T) {
	logs, graphs := fixtureDir(t, "comparison_logs"), fixtureDir(t, "comparison_graphs")
	files, err := filepath.Glob(filepath.Join(logs, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no comparison logs in %s (%v)", logs, err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := NewBuilder()
			if err := b.ReadJSONL(f, Window{}); err != nil {
				t.Fatal(err)
			}
			gs := b.Matrices()
			if len(gs) != 1 {
				t.Fatalf("%d graphs, want 1", len(gs))
			}
			var got bytes.Buffer
			if err := gs[0].Matrix.WriteCSV(&got); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(graphs, name+".csv"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("matrix differs\ngot:\n%s\nwant:\n%s", got.Bytes(), want)
			}
		})
	}
}
