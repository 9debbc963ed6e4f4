package labsim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// gen makes the messages of one stream. Shapes follow the learning-analytics
// fixtures and docs/relay.md ("Messages on a logging topic"); only one goroutine
// uses a gen at a time.
type gen struct {
	stream   string
	exp      string // spinner, pendulum, ...
	hardware string
	logs     []string // UI control names of this kind of rig

	rng    *rand.Rand // message content
	timing *rand.Rand // pauses, kept apart so content does not depend on Rate
	n      int64      // messages made

	user    string
	course  string
	session int // messages left in the current user's session

	sent   atomic.Int64
	frames atomic.Int64
}

var (
	spinnerLogs  = []string{"voltage", "voltage_ramp", "position", "position_ramp", "speed", "drive_perc", "brake_perc", "free", "brake", "measuring_tools", "sampling", "start", "record"}
	pendulumLogs = []string{"start", "sampling", "record", "drive_perc", "brake_perc", "free", "brake", "measuring_tools"}
	requests     = []string{"graph", "feedback", "achievements", "tasks"}
	comments     = []string{"motor is noisy", "graph helped", "not sure what kp does", "", "the ramp was too fast"}
	achievements = []string{"voltage_step", "position_control", "speed_control", "ramp_response", "tuned_kp", "tuned_ki", "tuned_kd", "recorded_data", "used_tools", "brake_test"}
)

func newGen(stream string, seed uint64) *gen {
	g := &gen{
		stream:   stream,
		hardware: strings.TrimSuffix(stream, "-log"),
		rng:      rand.New(rand.NewPCG(seed, streamSeed(stream))),
		timing:   rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, streamSeed(stream))),
	}
	switch {
	case strings.HasPrefix(stream, "pend"):
		g.exp, g.logs = "pendulum", pendulumLogs
	case strings.HasPrefix(stream, "spin"):
		g.exp, g.logs = "spinner", spinnerLogs
	default:
		g.exp, g.logs = strings.TrimRight(g.hardware, "0123456789-/"), spinnerLogs
	}
	return g
}

// message makes the next message, unique on its stream by its "n".
func (g *gen) message(now time.Time) []byte {
	if g.session <= 0 {
		g.newSession()
	}
	g.session--
	g.n++
	t := now.UnixMilli()
	switch x := g.rng.IntN(100); {
	case x < 55:
		return g.uiLog(t)
	case x < 65:
		return g.analytics(t)
	case x < 73:
		return g.legacy(t)
	case x < 81:
		return g.request(t)
	case x < 85:
		return g.feedback(t)
	case x < 97:
		return g.response(t)
	default:
		return g.achievements(t)
	}
}

func (g *gen) newSession() {
	g.user = g.uuid()
	g.course = "engdes1"
	if g.rng.IntN(4) == 0 {
		g.course = "cie3"
	}
	g.session = 20 + g.rng.IntN(200)
}

// uuid is a random (version 4) UUID from the seeded generator.
func (g *gen) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// uiLog is a lab UI event, compact as browsers' JSON.stringify writes it.
func (g *gen) uiLog(t int64) []byte {
	name := g.logs[g.rng.IntN(len(g.logs))]
	return fmt.Appendf(nil, `{"user":"%s","t":%d,"exp":"%s","hardware":"%s","course":"%s","type":"log","payload":{"log":"%s"%s,"n":%d}}`,
		g.user, t, g.exp, g.hardware, g.course, name, g.data(name, false), g.n)
}

// analytics is spaced like the fixtures' analytics lines, including their
// unspaced "hardware":"..." field.
func (g *gen) analytics(t int64) []byte {
	name := g.logs[g.rng.IntN(len(g.logs))]
	return fmt.Appendf(nil, `{"user": "%s", "t": %d, "exp": "%s", "hardware":"%s", "course": "%s", "type": "analytics", "payload": {"log": "%s"%s, "n": %d}}`,
		g.user, t, g.exp, g.hardware, g.course, name, g.data(name, true), g.n)
}

// legacy is an old UI's {user, t, payload}, trailing space included as in
// the fixtures.
func (g *gen) legacy(t int64) []byte {
	name := g.logs[g.rng.IntN(len(g.logs))]
	return fmt.Appendf(nil, `{"user": "%s", "t": %d, "payload": {"log": "%s"%s, "n": %d}} `,
		g.user, t, name, g.data(name, true), g.n)
}

// request comes from a dashboard, which has no hardware field.
func (g *gen) request(t int64) []byte {
	return fmt.Appendf(nil, `{"user":"%s","t":%d,"exp":"%s","course":"%s","type":"request","payload":{"request":"%s","n":%d}}`,
		g.user, t, g.exp, g.course, requests[g.rng.IntN(len(requests))], g.n)
}

func (g *gen) feedback(t int64) []byte {
	return fmt.Appendf(nil, `{"user":"%s","t":%d,"exp":"%s","hardware":"%s","course":"%s","type":"feedback","payload":{"log":"feedback","data":{"rating":%d,"comment":"%s"},"n":%d}}`,
		g.user, t, g.exp, g.hardware, g.course, 1+g.rng.IntN(5), comments[g.rng.IntN(len(comments))], g.n)
}

// response is the analytics server's answer, written by Python's json.dumps:
// spaces after separators, and NaN for a score it could not compute.
func (g *gen) response(t int64) []byte {
	score := "NaN"
	if g.rng.IntN(5) >= 2 {
		score = strconv.FormatFloat(float64(g.rng.IntN(1000))/1000, 'f', -1, 64)
	}
	hw := ""
	if g.rng.IntN(2) == 0 {
		hw = fmt.Sprintf(`"hardware": "%s", `, g.hardware)
	}
	return fmt.Appendf(nil, `{"user": "%s", "t": %d, "exp": "%s", %s"course": "%s", "type": "response", "payload": {"content": "%s", "score": %s, "n": %d}}`,
		g.user, t, g.exp, hw, g.course, requests[g.rng.IntN(len(requests))], score, g.n)
}

// achievements is a UI's ~2 KB summary log, the largest common message.
func (g *gen) achievements(t int64) []byte {
	b := fmt.Appendf(nil, `{"user":"%s","t":%d,"exp":"%s","hardware":"%s","course":"%s","type":"log","payload":{"log":"achievements","data":{"achievements":[`,
		g.user, t, g.exp, g.hardware, g.course)
	for i := 0; len(b) < 1900; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"name":"%s_%d","done":%t,"t":%d}`,
			achievements[i%len(achievements)], i/len(achievements), g.rng.IntN(3) > 0, t-int64(g.rng.IntN(3_600_000)))
	}
	return fmt.Appendf(b, `]},"n":%d}}`, g.n)
}

// data is the "data" member of a UI log, or nothing for plain clicks.
func (g *gen) data(name string, py bool) string {
	colon, comma := ":", ","
	if py {
		colon, comma = ": ", ", "
	}
	set := strconv.FormatFloat(float64(g.rng.IntN(61))/10, 'f', -1, 64)
	switch name {
	case "voltage", "voltage_ramp", "drive_perc", "brake_perc":
		return fmt.Sprintf(`%s"data"%s{"set"%s%s}`, comma, colon, colon, set)
	case "position", "position_ramp", "speed":
		return fmt.Sprintf(`%s"data"%s{"set"%s%s%s"kp"%s%d%s"ki"%s%d%s"kd"%s%d}`,
			comma, colon, colon, set, comma, colon, g.rng.IntN(5), comma, colon, g.rng.IntN(3), comma, colon, g.rng.IntN(2))
	}
	return ""
}
