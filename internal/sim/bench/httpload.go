package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// httpTarget is an /addLog endpoint and the Basic credential it takes.
type httpTarget struct {
	url, user, pass string
}

// httpRun is what one drive of an /addLog endpoint measured.
type httpRun struct {
	acked, refused int64
	latencies      []float64 // ms, of the acknowledged calls, sorted
	elapsed        float64   // seconds
	firstRefusal   string
}

// maxFlatRate bounds the calls of a flat-out drive (per second of it): far
// above what two cores answer, so time ends it, but never unbounded.
const maxFlatRate = 200_000

// driveHTTP posts calls (cycling) from clients keep-alive connections for
// d: flat out when rate is 0, else at rate calls/s shared by the clients.
// Paced latencies run from each call's due time, so a server (or load
// generator) that falls behind is charged for the wait.
func driveHTTP(ctx context.Context, t httpTarget, calls []statementCall, clients int, rate float64, d time.Duration) httpRun {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	limit := int64(d.Seconds() * maxFlatRate)
	if rate > 0 {
		limit = int64(d.Seconds() * rate)
	}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		out      httpRun
		wg       sync.WaitGroup
		start    = time.Now()
		interval = time.Duration(0)
	)
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One keep-alive connection per client, from an address of its
			// own (127.0.1.x): a server's per-address limits see many UIs.
			local := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+k%250))}
			tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true,
				DialContext: (&net.Dialer{LocalAddr: local}).DialContext}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			var lat []float64
			var acked, refused int64
			refusal := ""
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= limit {
					break
				}
				sent := time.Now()
				if interval > 0 {
					// Pacing, not synchronisation: call i is due at its slot.
					sent = start.Add(time.Duration(i) * interval)
					if wait := time.Until(sent); wait > 0 {
						select {
						case <-ctx.Done():
							continue
						case <-time.After(wait):
						}
					}
				}
				status, err := post(ctx, client, t, calls[i%int64(len(calls))])
				switch {
				case err != nil && ctx.Err() != nil:
					// Cut off by the end of the drive: neither acknowledged nor refused.
				case status == http.StatusNoContent:
					acked++
					lat = append(lat, float64(time.Since(sent))/float64(time.Millisecond))
				default:
					refused++
					if refusal == "" {
						refusal = fmt.Sprintf("status %d %v", status, err)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			out.acked += acked
			out.refused += refused
			out.latencies = append(out.latencies, lat...)
			if out.firstRefusal == "" {
				out.firstRefusal = refusal
			}
		}()
	}
	wg.Wait()
	out.elapsed = time.Since(start).Seconds()
	slices.Sort(out.latencies)
	return out
}

// post makes one call and reads the answer to the end, so the connection
// is kept alive for the next.
func post(ctx context.Context, client *http.Client, t httpTarget, c statementCall) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+"?"+c.query, bytes.NewReader(c.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(t.user, t.pass)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// quantile is the q-quantile of sorted values (nearest rank), NaN when
// there are none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return ratio(0, 0)
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
