package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/archive"
	"github.com/practable/lablog/internal/buffer"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/frame"
	"github.com/practable/lablog/internal/recorder"
)

// lablog compact archives the closed hours and keeps the open one, unless
// --open-hours; what it published reads back whole.
func TestCompactCommand(t *testing.T) {
	cfgPath, _ := daemonConfig(t, "ws://127.0.0.1:1")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := recorder.OpenBuffer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := buffer.NewWriter(db, 1024, nil)
	go w.Run()
	now := time.Now()
	closedHour := now.Add(-3 * time.Hour)
	for i := range 20 {
		at := closedHour
		if i%2 == 1 {
			at = now
		}
		if !w.Enqueue(frame.Record{Stream: "spin30", Received: at, Kind: frame.Text, Data: fmt.Appendf(nil, `{"n":%d}`, i)}) {
			t.Fatal("the writer refused a record")
		}
	}
	w.Stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	out, err := runCmd(t, "compact", "--config", cfgPath)
	if err != nil || !strings.Contains(out, "published 1 files, 10 records") {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	out, err = runCmd(t, "compact", "--config", cfgPath, "--open-hours")
	if err != nil || !strings.Contains(out, "published 1 files, 10 records") {
		t.Fatalf("compact --open-hours: %v\n%s", err, out)
	}
	files, problems := archive.VerifyTree(cfg.Archive.Path)
	if files != 2 || len(problems) > 0 {
		t.Errorf("archive: %d files, problems %v; want 2 files", files, problems)
	}
	out, err = runCmd(t, "compact", "--config", cfgPath, "--open-hours")
	if err != nil || !strings.Contains(out, "published 0 files") {
		t.Errorf("compact of an empty buffer: %v\n%s", err, out)
	}
}
