package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/practable/lablog/internal/analytics/dashboard"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

// The dashboards' API at scale: a buffer of many students' statements,
// answered while statements keep arriving.
const (
	dashClients      = 8   // dashboards asking at once, closed loop
	dashIngestRate   = 100 // statements/s arriving meanwhile
	dashIngestClient = 16
)

// dashboards fills a buffer with statements of many users, starts lablog
// on it and measures the dashboards' calls: the first answer (the new
// store counts the whole buffer), then latency under a steady ingest.
func (r *runner) dashboards(ctx context.Context) error {
	users, statements := 1000, 2_000_000
	if r.o.Quick {
		users, statements = 50, 20_000
	}
	dir, err := r.runDir("dashboards")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	built := time.Now()
	if err := fillStatements(filepath.Join(dir, "buffer.db"), users, statements); err != nil {
		return err
	}
	r.log.Info("bench: dashboards buffer built", "statements", statements, "took", time.Since(built).Round(time.Second))
	creds := filepath.Join(dir, "addlog-credentials")
	if err := os.WriteFile(creds, []byte(httpUser+":"+httpPass+"\n"), 0o600); err != nil {
		return fmt.Errorf("dashboards credentials: %w", err)
	}
	listen, err := freePort()
	if err != nil {
		return err
	}
	// The statements are of the current hour: no compaction meanwhile.
	sections := fmt.Sprintf("addlog: {listen: %q, credentials_file: %q, allowed_origins: [\"*\"]}\n"+
		"compaction: {interval: 24h, grace: 23h}\nstreams: []\n", listen, creds)
	c, err := launchChild(ctx, r.o, dir, "max_size: 4GiB", sections)
	if err != nil {
		return err
	}
	defer c.stop()
	wait, cancel := context.WithTimeout(ctx, r.connectTimeout(0))
	err = c.awaitURL(wait, "http://"+listen+"/healthz")
	cancel()
	if err != nil {
		return err
	}
	base := "http://" + listen
	scenario := fmt.Sprintf("dashboards, %d users, %d statements", users, statements)
	// A new store answers 503 until it has counted the buffer: the wait
	// is the time to rebuild the dashboards' state.
	first := time.Now()
	client := &http.Client{Timeout: time.Minute}
	for {
		_, err := ask(ctx, client, base+"/usageStats?"+dashQuery(0, 0))
		if err == nil {
			break
		}
		if !errors.Is(err, errBusy) || time.Since(first) > 30*time.Minute {
			return c.failed(fmt.Errorf("first dashboard answer: %w", err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	r.rep.add(scenario, "first answer (a new store counts the buffer)", "s", "", time.Since(first).Seconds())

	calls := makeStatements(4096, 23)
	for range r.o.Runs {
		ingest := make(chan httpRun, 1)
		go func() {
			ingest <- driveHTTP(ctx, httpTarget{url: base + "/addLog", user: httpUser, pass: httpPass}, calls,
				dashIngestClient, dashIngestRate, r.o.Duration)
		}()
		lat, errs := askMany(ctx, base, users, r.o.Duration)
		in := <-ingest
		r.rep.add(scenario, "answer p50", "ms", "", quantile(lat, 0.5))
		r.rep.add(scenario, "answer p99", "ms", "< 50", quantile(lat, 0.99))
		r.rep.add(scenario, "answers", "/s", "", float64(len(lat))/r.o.Duration.Seconds())
		r.rep.add(scenario, "failed answers", "", "0", float64(errs))
		r.rep.add(scenario, "statements acknowledged meanwhile", "/s", "", float64(in.acked)/in.elapsed)
	}
	r.rep.note("dashboards: %d dashboards ask closed loop for random users and endpoints while %d statements/s arrive; the load generator shares the cores.", dashClients, dashIngestRate)
	return nil
}

// dashQuery is the query of user u's dashboard, on hardware kind k.
func dashQuery(u, k int) string {
	kind := labKinds[k%len(labKinds)]
	return url.Values{"username": {fmt.Sprintf("d-%04d", u)}, "course": {"ed1"}, "hardware": {kind.hardware},
		"taskcode": {kind.hardware + "-ed1-1"}}.Encode()
}

// askMany asks from dashClients closed-loop clients for d; it returns the
// sorted latencies (ms) of the answers and how many calls failed.
func askMany(ctx context.Context, base string, users int, d time.Duration) ([]float64, int) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var lat []float64
	errs := 0
	var wg sync.WaitGroup
	for k := range dashClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(k), 24))
			client := &http.Client{Timeout: 10 * time.Second}
			for n := 0; n < 1_000_000 && ctx.Err() == nil; n++ {
				path := dashboard.Paths[rng.IntN(len(dashboard.Paths))]
				t0 := time.Now()
				_, err := ask(ctx, client, base+path+"?"+dashQuery(rng.IntN(users), rng.IntN(2)))
				ms := float64(time.Since(t0).Microseconds()) / 1000
				mu.Lock()
				switch {
				case err == nil:
					lat = append(lat, ms)
				case ctx.Err() == nil:
					errs++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	return lat, errs
}

// errBusy is a 503: the store is still counting.
var errBusy = errors.New("503: busy")

// ask GETs url and wants a 200.
func ask(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err == nil && resp.StatusCode == http.StatusServiceUnavailable:
		err = fmt.Errorf("%s: %w", url, errBusy)
	case err == nil && resp.StatusCode != 200:
		err = fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return body, err
}

// fillStatements writes a buffer of n statements of users students (each
// on one kind of hardware), as the addlog handler records them, received
// over the last minutes.
func fillStatements(path string, users, n int) error {
	db, err := buffer.Open(path, buffer.Options{MaxSize: 4 << 30})
	if err != nil {
		return fmt.Errorf("dashboards buffer: %w", err)
	}
	rng := rand.New(rand.NewPCG(25, 25))
	start := time.Now().Add(-5 * time.Minute)
	step := 5 * time.Minute / time.Duration(n)
	ts := start.UnixMilli()
	batch := make([]frame.Record, 0, fillBatch)
	for i := range n {
		u := rng.IntN(users)
		k := labKinds[u%len(labKinds)]
		verb := statementVerbs[rng.IntN(len(statementVerbs))]
		node := k.nodes[rng.IntN(len(k.nodes))]
		ts += int64(rng.IntN(3))
		user := fmt.Sprintf("d-%04d", u)
		q := url.Values{"username": {user}, "course": {"ed1"}, "hardware": {k.hardware}}
		body := fmt.Appendf(nil, `{"timestamp":%d,"level":"INFO","type":"analytics","version":"1.1",`+
			`"actor":{"id":%q,"course":"ed1"},"verb":{"name":%q},"object":{"id":"run-%s","ui":"%s-3.0"},`+
			`"context":{"event_type":"click","x":%d,"y":%d,"exp_id":"`+k.device+`","graph_node":%q}}`,
			ts, user, verb, node, k.hardware, rng.IntN(1280), rng.IntN(800), rng.IntN(k.devices), node)
		batch = append(batch, frame.Record{Stream: "addlog-" + k.hardware, Received: start.Add(time.Duration(i) * step),
			ClockSynced: true, Kind: frame.Statement, Data: frame.StatementData(q, body)})
		if len(batch) == cap(batch) || i == n-1 {
			if err := db.Append(batch); err != nil {
				db.Close()
				return fmt.Errorf("dashboards buffer: %w", err)
			}
			batch = batch[:0]
		}
	}
	return db.Close()
}
