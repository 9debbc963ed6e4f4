package relay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/relay"
)

// TestHostProvisioned: `relay_host:` streams with tokens, where lablog
// posts the real host's rules itself, record every message of steady
// traffic; after the host restarts (rules lost), lablog posts them again
// and every stream records again.
func TestHostProvisioned(t *testing.T) {
	t.Parallel()
	streams := []string{"pend00", "pend01", "pend02"}
	r := newRig(t, time.Hour, streams...)
	r.readThroughHost(streams...)
	host := newHost(t)
	r.lablog = startLablog(t, r.readTk, fmt.Sprintf("{name: pend00-02, relay_host: %s, tokens_dir: %s}", host.URL(), r.readTk))
	warmUp(t, r.list(), 30*time.Second, r.connected)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	steady(ctx, r.list(), 20).Wait()
	cancel()
	r.settle(20 * time.Second)
	steadySent := map[string]int{}
	for name, s := range r.senders {
		steadySent[name], _ = s.sent()
	}

	// The host restarts under traffic.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	wg := steady(ctx, r.list(), 20)
	time.Sleep(time.Second) // traffic before the restart
	host.p.stop()
	up := host.start()
	r.awaitBack(45*time.Second, up)
	time.Sleep(2 * time.Second) // traffic after every stream is back
	cancel()
	wg.Wait()
	r.settle(20 * time.Second)
	recs := r.lablog.records()
	r.result("host provisioned", recs, false)
	var gaps []float64
	for _, name := range streams {
		tl := count(recs[name])
		miss := tl.missing(upTo(steadySent[name]))
		r.lacks(name, len(miss), "host provisioned: steady traffic before the restart: lablog lacks %d of %d messages of %s", len(miss), steadySent[name], name)
		first, ok := firstAfter(recs[name], up)
		if !ok {
			t.Errorf("host restart: %s never recorded again within 45 s of the host answering", name)
			gaps = append(gaps, 1e9)
			continue
		}
		gaps = append(gaps, first.Sub(up).Seconds())
		// Once a message comes through again, the path is whole: nothing
		// after it may be missing.
		after := r.senders[name].sentBetween(first.Add(200*time.Millisecond), time.Now())
		miss = tl.missing(after)
		r.lacks(name, len(miss), "host restart: %s lacks %d of the %d messages sent after it recorded again", name, len(miss), len(after))
	}
	t.Logf("host restart: time to record again after the host answers: p50 %.2f s, p95 %.2f s, per stream %.2f", percentile(gaps, 50), percentile(gaps, 95), gaps)
}

// TestHostUnprovisioned: `relay_host:` streams without tokens only read;
// the rules come from elsewhere (here the test, as the old script did)
// and every message of steady traffic is recorded. A host restart loses
// the rules, which nobody then posts again.
func TestHostUnprovisioned(t *testing.T) {
	t.Parallel()
	streams := []string{"spin40", "spin41"}
	r := newRig(t, time.Hour, streams...)
	r.readThroughHost(streams...)
	host := newHost(t)
	api, err := relay.NewHostAPI(host.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range streams {
		rule := relay.Rule{ID: s, Stream: s, Destination: r.serve.AccessURL(s), Token: token(t, r.readTk, s)}
		if err := api.Put(ctx, rule); err != nil {
			t.Fatalf("post rule %s to the real host: %v", s, err)
		}
	}
	r.lablog = startLablog(t, r.readTk, fmt.Sprintf("{name: spin40-41, relay_host: %s}", host.URL()))
	warmUp(t, r.list(), 30*time.Second, r.connected)

	sctx, scancel := context.WithTimeout(ctx, 4*time.Second)
	steady(sctx, r.list(), 20).Wait()
	scancel()
	r.settle(20 * time.Second)

	host.p.stop()
	host.start()
	rules, err := api.All(ctx)
	if err != nil {
		t.Fatalf("rules after the host restart: %v", err)
	}
	if len(rules) != 0 {
		t.Errorf("the real host kept %d rules across a restart; lablog's doubles assume it forgets them", len(rules))
	}
	r.lablog.verify()
	sent, got, _ := r.result("host unprovisioned", r.lablog.records(), true)
	t.Logf("host unprovisioned: %d streams x 20 msg/s: sent %d, lablog %d", len(streams), sent, got)
}
