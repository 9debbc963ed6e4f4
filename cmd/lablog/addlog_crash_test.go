package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/testing/testkit"
)

// The acknowledgement promise under SIGKILL, with the real binary: 8 UIs
// post statements while lablog is killed and restarted 10 times. Every
// statement answered 2xx is archived exactly once; one that got no answer
// may be missing, and none is ever doubled.
func TestAddLogAcknowledgedSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the real binary 10 times")
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "lablog.yaml")
	cfg := fmt.Sprintf("buffer: {path: %s}\narchive: {path: %s, require: none}\nstatus: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\n%s\n",
		filepath.Join(dir, "buffer.db"), filepath.Join(dir, "archive"), addLogSection(t, dir, `"*"`))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}

	var base atomic.Value // the running daemon's addlog URL, "" between runs
	base.Store("")
	var (
		mu        sync.Mutex
		acked     = map[string]bool{}
		sent      = map[string]bool{}
		ackCount  atomic.Int64
		stop      = make(chan struct{})
		clientsWG sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	for c := range 8 {
		clientsWG.Add(1)
		go func() {
			defer clientsWG.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				url := base.Load().(string)
				if url == "" {
					time.Sleep(5 * time.Millisecond) // pacing while lablog is down; not a synchronisation
					continue
				}
				body := fmt.Sprintf(`{"actor":{"id":"u%d"},"verb":{"name":"clicked"},"n":"%d-%d"}`, c, c, i)
				mu.Lock()
				sent[body] = true
				mu.Unlock()
				req, _ := http.NewRequest("POST", url+"/addLog?username=u&hardware=spinner", strings.NewReader(body))
				req.SetBasicAuth(alUser, alPass)
				resp, err := client.Do(req)
				if err != nil {
					continue // no answer: may or may not be recorded
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					mu.Lock()
					acked[body] = true
					mu.Unlock()
					ackCount.Add(1)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		clientsWG.Wait()
	}()

	const kills = 10
	for k := 0; k <= kills; k++ {
		cmd, log := startDaemon(t, cfgPath, `msg="addlog listening"`)
		m := addLogURL.FindStringSubmatch(log.String())
		if m == nil {
			t.Fatalf("no addlog URL:\n%s", log)
		}
		before := ackCount.Load()
		base.Store(m[1])
		// Let the UIs get some statements acknowledged by this run.
		testkit.Eventually(t, 30*time.Second, "statements acknowledged in this run", func() bool {
			return ackCount.Load() >= before+150
		})
		base.Store("")
		if k == kills {
			close(stop)
			clientsWG.Wait()
			_ = cmd.Process.Signal(os.Interrupt)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("clean stop: %v\n%s", err, log)
			}
			break
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}

	if out, err := runCmd(t, "compact", "--config", cfgPath, "--open-hours"); err != nil {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "verify", filepath.Join(dir, "archive")); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	archived := map[string]int{}
	err := filepath.WalkDir(filepath.Join(dir, "archive"), func(p string, e os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".parquet") {
			return err
		}
		rows, _, err := archive.ReadRows(p)
		for _, r := range rows {
			archived[*r.Raw]++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	lost, doubled, unknown := 0, 0, 0
	for b := range acked {
		if archived[b] == 0 {
			lost++
		}
	}
	for b, n := range archived {
		if n > 1 {
			doubled++
		}
		if !sent[b] {
			unknown++
		}
	}
	t.Logf("%d kills: %d statements sent, %d acknowledged, %d archived", kills, len(sent), len(acked), len(archived))
	if lost > 0 || doubled > 0 || unknown > 0 {
		t.Fatalf("%d acknowledged statements lost, %d archived twice, %d never sent", lost, doubled, unknown)
	}
}
