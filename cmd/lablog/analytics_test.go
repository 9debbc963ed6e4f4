package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

const laFixtures = "../../../shared/fixtures/learning-analytics"

func laFixture(t *testing.T, sub string) string {
	t.Helper()
	dir := filepath.Join(laFixtures, sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("fixtures missing: %v", err)
		}
		t.Skipf("fixtures missing: %v", err)
	}
	return dir
}

func TestAnalyticsHelpAndUsage(t *testing.T) {
	for _, help := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"analytics", help}, &stdout, &stderr); err != nil || stderr.Len() > 0 {
			t.Errorf("analytics %s: %v %q", help, err, stderr.String())
		}
		for _, f := range []string{"Usage: lablog analytics", "-archive", "-buffer", "-jsonl", "-logs", "-compare", "-since", "-until", "-out"} {
			if !strings.Contains(stdout.String(), f) {
				t.Errorf("analytics %s lacks %q", help, f)
			}
		}
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", dir}, "want exactly one of --archive, --jsonl, --logs"},
		{[]string{"--jsonl", "x", "--logs", "y", "--out", dir}, "want exactly one of"},
		{[]string{"--jsonl", "x", "--buffer", "b", "--out", dir}, "--buffer goes with --archive"},
		{[]string{"--jsonl", "x"}, "--out required"},
		{[]string{"--jsonl", "x", "--out", dir, "--since", "yesterday"}, "--since"},
		{[]string{"--jsonl", "x", "--out", dir, "extra"}, "unexpected argument"},
		{[]string{"--no-such-flag"}, "-no-such-flag"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"analytics"}, tc.args...), &stdout, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), "Usage: lablog analytics") {
			t.Errorf("%v: %v %q, want a usage error with %q", tc.args, err, stderr.String(), tc.want)
		}
	}
	if out, err := runCmd(t, "help"); err != nil || !strings.Contains(out, "lablog analytics --archive DIR") {
		t.Errorf("lablog help lacks analytics: %v", err)
	}
	// A failure (not a usage problem) is an error of its own.
	if _, err := runCmd(t, "analytics", "--jsonl", filepath.Join(dir, "missing.jsonl"), "--out", dir); err == nil || errors.Is(err, errUsage) {
		t.Errorf("missing input: %v, want a failure", err)
	}
}

// --jsonl over an expert log writes the comparison graph, byte for byte,
// and indicators against the comparison graphs.
func TestAnalyticsJSONLFixture(t *testing.T) {
	logs, graphs := laFixture(t, "comparison_logs"), laFixture(t, "comparison_graphs")
	out := t.TempDir()
	msg, err := runCmd(t, "analytics", "--jsonl", filepath.Join(logs, "pendulum-engdes1-2.json"), "--compare", graphs, "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	got, err := os.ReadFile(filepath.Join(out, "testuser-pendulum-engdes1-adjacency.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(graphs, "pendulum-engdes1-2.csv"))
	if !bytes.Equal(got, want) {
		t.Errorf("matrix:\n%s\nwant:\n%s", got, want)
	}
	var ind struct {
		Graphs []struct {
			User               string              `json:"user"`
			TaskIdentification map[string]*float64 `json:"task_identification"`
			Exploration        *float64            `json:"exploration"`
		} `json:"graphs"`
	}
	data, err := os.ReadFile(filepath.Join(out, "indicators.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ind); err != nil {
		t.Fatal(err)
	}
	if len(ind.Graphs) != 1 || ind.Graphs[0].User != "testuser" {
		t.Fatalf("indicators: %s", data)
	}
	// The student did exactly task 2: no distance to it.
	if d := ind.Graphs[0].TaskIdentification["pendulum-engdes1-2"]; d == nil || *d != 0 {
		t.Errorf("distance to the task done: %v", d)
	}
	if len(ind.Graphs[0].TaskIdentification) != 5 {
		t.Errorf("task identification against %d graphs, want the 5 pendulum-engdes1 ones", len(ind.Graphs[0].TaskIdentification))
	}
}

// The same frames give the same files from --jsonl and from --archive over
// what the real compactor wrote, with --buffer for the hour not archived.
func TestAnalyticsArchiveMatchesJSONL(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 26, 9, 40, 0, 0, time.UTC)
	var recs []frame.Record
	var jsonl bytes.Buffer
	spin := []string{"voltage", "position", "speed", "voltage_ramp", "position_ramp", "speed_ramp"}
	for i := range 3000 {
		user, hw := fmt.Sprintf("user%d", i%7), fmt.Sprintf("spin3%d", i%3)
		at := start.Add(time.Duration(i) * 2 * time.Second)
		data := fmt.Sprintf(`{"user":%q,"t":%d,"exp":"spinner","hardware":%q,"course":"cie3","type":"log","payload":{"log":%q}}`,
			user, at.UnixMilli()-int64(i%4)*1000, hw, spin[(i*i)%len(spin)])
		if i%50 == 0 {
			data += `{"user":"x","type":"response","payload":NaN}`
		}
		recs = append(recs, frame.Record{Stream: hw, Received: at, Kind: frame.Text, Data: []byte(data)})
		jsonl.WriteString(data + "\n")
	}
	jsonlPath := filepath.Join(dir, "frames.jsonl")
	if err := os.WriteFile(jsonlPath, jsonl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	bufPath, root := filepath.Join(dir, "buffer.db"), filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := buffer.Open(bufPath, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Append(recs); err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1].Received
	c := compactor.New(db, compactor.Options{Root: root, Require: "none", Grace: time.Minute,
		Now: func() time.Time { return last }, Logger: slog.New(slog.DiscardHandler)})
	if res := c.RunOnce(context.Background()); res.Err != nil || res.Files == 0 {
		t.Fatalf("compaction: %+v", res)
	}
	// lablog still holds the buffer: refused, and says why.
	out, err := runCmd(t, "analytics", "--archive", root, "--buffer", bufPath, "--out", filepath.Join(dir, "held"))
	if err == nil || !strings.Contains(err.Error(), "lablog is running on this buffer") {
		t.Errorf("held buffer: %v %s", err, out)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	outJSONL, outArchive := filepath.Join(dir, "from-jsonl"), filepath.Join(dir, "from-archive")
	if out, err := runCmd(t, "analytics", "--jsonl", jsonlPath, "--out", outJSONL); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := runCmd(t, "analytics", "--archive", root, "--buffer", bufPath, "--out", outArchive); err != nil {
		t.Fatalf("%v\n%s", err, out)
	} else if !strings.Contains(out, "7 graphs from 3000 commands") {
		t.Errorf("summary: %s", out)
	}
	want, _ := filepath.Glob(filepath.Join(outJSONL, "*-adjacency.csv"))
	if len(want) != 7 {
		t.Fatalf("%d matrices from --jsonl, want 7", len(want))
	}
	for _, path := range want {
		a, _ := os.ReadFile(path)
		b, err := os.ReadFile(filepath.Join(outArchive, filepath.Base(path)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs (%v):\njsonl:\n%s\narchive:\n%s", filepath.Base(path), err, a, b)
		}
	}
	// Without the buffer the open hour is missing.
	outPart := filepath.Join(dir, "archive-only")
	if out, err := runCmd(t, "analytics", "--archive", root, "--out", outPart); err != nil || strings.Contains(out, "from 3000 commands") {
		t.Errorf("archive alone: %v %s", err, out)
	}
}

func TestAnalyticsLogsFolder(t *testing.T) {
	data := laFixture(t, "test/data")
	out := t.TempDir()
	msg, err := runCmd(t, "analytics", "--logs", data, "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	if !strings.Contains(msg, "skipped 4 files") {
		t.Errorf("output: %s", msg)
	}
	for _, name := range []string{"test-spinner-engdes1-adjacency.csv", "53a6788c-e689-48d4-9231-c2fbd23df009-spinner-engdes1-adjacency.csv",
		"david-test-pendulum-pendulum-engdes1-adjacency.csv"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}
	// The test user's matrix is the reference test-suite's spinner-compare-same.csv.
	got, _ := os.ReadFile(filepath.Join(out, "test-spinner-engdes1-adjacency.csv"))
	want, _ := os.ReadFile(filepath.Join(data, "spinner-compare-same.csv"))
	if !bytes.Equal(got, want) {
		t.Errorf("test user:\n%s\nwant:\n%s", got, want)
	}
}
