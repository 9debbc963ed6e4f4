package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

// lablog compact archives the closed hours and keeps the open one, unless
// --open-hours; what it published reads back whole.
func TestCompactCommand(t *testing.T) {
	cfgPath, _ := daemonConfig(t, "ws://127.0.0.1:1")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := wire.OpenBuffer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := buffer.NewWriter(db, buffer.WriterOptions{Queue: 1024})
	stopWriter := testkit.Start(t, w)
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
	stopWriter()
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

// lablog compact exits 3 (done with problems), saying why on stderr, when
// records did not reach the archive: a corrupt buffer quarantined, or
// damaged records set aside. The real binary, as a script would run it.
func TestCompactExitsThreeWhenRecordsMissTheArchive(t *testing.T) {
	compact := func(t *testing.T, cfgPath string) (code int, stdout, stderr string) {
		t.Helper()
		var o, e bytes.Buffer
		cmd := exec.Command(lablogBinary(t), "compact", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), o.String(), e.String()
	}

	t.Run("quarantined", func(t *testing.T) {
		cfgPath, bufPath := daemonConfig(t, "ws://127.0.0.1:1")
		if err := os.WriteFile(bufPath, bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := compact(t, cfgPath)
		if code != exitProblems || !strings.Contains(errOut, "lablog: done with problems: the buffer was corrupt and was set aside as "+bufPath+".corrupt-") ||
			!strings.Contains(out, "published 0 files") {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
		}
	})

	t.Run("records set aside", func(t *testing.T) {
		cfgPath, bufPath := daemonConfig(t, "ws://127.0.0.1:1")
		db, err := buffer.Open(bufPath, buffer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		hour := frame.Hour(time.Now().Add(-3 * time.Hour))
		for b := range 3 { // three blocks of 20 records
			var recs []frame.Record
			for i := range 20 {
				recs = append(recs, frame.Record{Stream: "spin30", Received: hour.Add(time.Duration(b) * time.Minute), Kind: frame.Text, Data: fmt.Appendf(nil, `{"n":%d}`, i)})
			}
			if err := db.Append(recs); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		damageSecondBlock(t, bufPath, "spin30")
		code, out, errOut := compact(t, cfgPath)
		if code != exitProblems || !strings.Contains(errOut, "lablog: done with problems: 20 damaged records set aside in ") ||
			!strings.Contains(out, "published 1 files, 40 records") {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
		}
		// Nothing left to do, nothing wrong: a clean run exits 0.
		if code, out, errOut := compact(t, cfgPath); code != 0 || !strings.Contains(out, "published 0 files") {
			t.Fatalf("second run: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
		}
	})
}

// damageSecondBlock flips a byte in the middle of stream's second stored
// block, as a failing SD card would.
func damageSecondBlock(t *testing.T, path, stream string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("blocks")).Bucket([]byte(stream))
		c := b.Cursor()
		c.First()
		k, v := c.Next()
		damaged := append([]byte(nil), v...)
		damaged[len(damaged)/2] ^= 0x20
		return b.Put(append([]byte(nil), k...), damaged)
	})
	if err != nil {
		t.Fatal(err)
	}
}
