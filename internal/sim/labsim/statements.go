package labsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// StatementUIs plays today's lab UIs: students on the given devices whose
// every click, change and session start is an xAPI-like statement POSTed
// to {lh}/addLog with a Basic credential, as spinner 3.0 and pendulum 2.0
// do. Shapes follow the facts of practable's HTTP logging.
type StatementUIs struct {
	LH             string   // the logging host's base URL
	User, Password string   // the Basic credential (the UIs' la)
	Devices        []string // spin30, pend00, ...: hardware from the name
	Rate           float64  // statements per second, over all devices
	Seed           uint64

	sent, acked atomic.Int64
}

// Sent and Acked count the statements posted and answered 2xx.
func (u *StatementUIs) Sent() int64  { return u.sent.Load() }
func (u *StatementUIs) Acked() int64 { return u.acked.Load() }

var (
	spinnerNodes  = map[string]string{"run-voltage-step": "voltage_step", "run-voltage-ramp": "voltage_ramp", "run-position-step": "position_step", "run-position-ramp": "position_ramp", "run-speed-step": "speed_step", "run-speed-ramp": "speed_ramp"}
	pendulumNodes = []string{"start", "brake", "load", "free", "sampling", "drive_perc", "brake_perc", "record", "measuring_tools"}
	otherVerbs    = []string{"changed", "data-hovered", "opened-component", "closed-component", "pressed-hotkey"}
)

// Run posts until ctx ends; a failed call is counted and forgotten, as the
// real UIs forget it.
func (u *StatementUIs) Run(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(u.Seed, 7))
	client := &http.Client{Timeout: 5 * time.Second}
	gap := time.Duration(float64(time.Second) / max(u.Rate, 0.01))
	started := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(rng.ExpFloat64() * float64(gap))):
		}
		dev := u.Devices[rng.IntN(len(u.Devices))]
		user := fmt.Sprintf("student-%s-%d", dev, rng.IntN(3))
		body := u.statement(rng, dev, user, !started[user])
		started[user] = true
		hardware := "spinner"
		if strings.HasPrefix(dev, "pend") {
			hardware = "pendulum"
		}
		q := url.Values{"username": {user}, "course": {"ed1"}, "hardware": {hardware}}
		req, err := http.NewRequestWithContext(ctx, "POST", u.LH+"/addLog?"+q.Encode(), strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(u.User, u.Password)
		u.sent.Add(1)
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			u.acked.Add(1)
		}
	}
}

// statement makes one statement of user on dev: a session start first,
// then mostly clicks on command controls, some other verbs.
func (u *StatementUIs) statement(rng *rand.Rand, dev, user string, first bool) string {
	verb, object, node := "session-started", "page", ""
	switch {
	case first:
	case rng.IntN(4) == 0:
		verb = otherVerbs[rng.IntN(len(otherVerbs))]
		object = []string{"voltage", "graph", "controls", "k"}[rng.IntN(4)]
	case strings.HasPrefix(dev, "pend"):
		verb, node = "clicked", pendulumNodes[rng.IntN(len(pendulumNodes))]
		object = "button-" + node
	default:
		verb = "clicked"
		for o, n := range spinnerNodes { // map order is random enough here
			object, node = o, n
			break
		}
	}
	ctx := map[string]any{"event_type": "click", "exp_id": dev, "x": rng.IntN(800), "y": rng.IntN(600)}
	if node != "" {
		ctx["graph_node"] = node
	}
	obj := map[string]any{"id": object, "parent": "controls"}
	if verb == "changed" {
		obj["value"] = fmt.Sprint(rng.IntN(10)) + " V"
	}
	b, _ := json.Marshal(map[string]any{
		"timestamp": time.Now().UnixMilli(), "level": "INFO", "type": "analytics", "version": "1.1",
		"actor":   map[string]any{"id": user, "course": "ed1"},
		"verb":    map[string]any{"name": verb, "definition": u.LH + "/verbs/" + verb},
		"object":  obj,
		"context": ctx,
	})
	return string(b)
}
