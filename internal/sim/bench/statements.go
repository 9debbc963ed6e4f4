package bench

import (
	"fmt"
	"math/rand/v2"
	"net/url"
)

// statementCall is one /addLog call as today's lab UIs make it: the three
// query parameters and an xAPI-like statement (docs: practable-http.md).
type statementCall struct {
	query string
	body  []byte
}

// labKind is one kind of hardware with its devices and command nodes.
type labKind struct {
	hardware, device string
	devices          int
	nodes            []string
}

var labKinds = []labKind{
	{"spinner", "spin%02d", 48, []string{"voltage_step", "voltage_ramp", "position_step", "position_ramp", "speed_step", "speed_ramp"}},
	{"pendulum", "pend%02d", 38, []string{"start", "brake", "load", "free", "sampling", "drive_perc", "brake_perc", "record", "measuring_tools"}},
}

var statementVerbs = []string{"clicked", "clicked", "clicked", "changed", "data-hovered", "pressed-hotkey", "opened-component", "closed-component", "session-started"}

// makeStatements makes n calls of 200 students on two kinds of lab, about
// 400 bytes each, varying user, verb and graph node; seeded, so every run
// offers the same calls.
func makeStatements(n int, seed uint64) []statementCall {
	rng := rand.New(rand.NewPCG(seed, 22))
	calls := make([]statementCall, n)
	ts := int64(1_733_000_000_000)
	for i := range calls {
		k := labKinds[rng.IntN(len(labKinds))]
		user := fmt.Sprintf("u-%04x", rng.IntN(200))
		verb := statementVerbs[rng.IntN(len(statementVerbs))]
		node := k.nodes[rng.IntN(len(k.nodes))]
		ts += int64(rng.IntN(900))
		q := url.Values{"username": {user}, "course": {"ed1"}, "hardware": {k.hardware}}
		calls[i] = statementCall{
			query: q.Encode(),
			body: fmt.Appendf(nil, `{"timestamp":%d,"level":"INFO","type":"analytics","version":"1.1",`+
				`"actor":{"id":%q,"course":"ed1"},"verb":{"name":%q,"definition":"https://lh.example/verbs/%s"},`+
				`"object":{"id":"run-%s","parent":"controls","ui":"%s-3.0"},"context":{"event_type":"click",`+
				`"event_timestamp":%.1f,"x":%d,"y":%d,"exp_id":"`+k.device+`","session-expired":false,"graph_node":%q}}`,
				ts, user, verb, verb, node, k.hardware, rng.Float64()*5000, rng.IntN(1280), rng.IntN(800), rng.IntN(k.devices), node),
		}
	}
	return calls
}
