package analytics

import (
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/statement"
)

// Event is what analytics needs of one /addLog statement: whose, which
// course and kind of hardware (statement.ParseCall decides), when (the
// browser's timestamp), its verb and, for a command control, its graph
// node. Arrival orders events with the same timestamp.
type Event struct {
	User, Course, Hardware *string
	T                      *int64
	Verb, GraphNode        *string
	Arrival                int64
}

// EventFromCall turns a parsed /addLog call into an Event.
func EventFromCall(c statement.Call, arrival int64) Event {
	return Event{User: c.User, Course: c.Course, Hardware: c.Hardware, T: c.Timestamp,
		Verb: c.Verb, GraphNode: c.GraphNode, Arrival: arrival}
}

// eventFromRow is an archived statement's Event.
func eventFromRow(r *archive.MessageRow) Event {
	return Event{User: r.User, Course: r.Course, Hardware: r.Hardware, T: r.T,
		Verb: r.Verb, GraphNode: r.GraphNode, Arrival: r.ReceivedAt}
}

// SessionStarted is the verb a UI sends when a student's session begins.
const SessionStarted = "session-started"

// eventVerdict is what one statement means for the graphs: a usage count
// of its verb, a session start, and a step of the graph when it names a
// node.
type eventVerdict struct {
	key     Key
	ok      bool   // key names a graph
	verb    string // "" for none
	session bool   // a session started at the event's T
	node    int    // the step's node, -1 for none
}

// classifyEvent decides what e is, counting in st what the caller does
// not (the caller counts the commands once it has the graph). The
// hardware kind is the call's; when the page gave none ("none" or absent)
// a graph node that only one experiment has names it.
func (st *Stats) classifyEvent(e Event) eventVerdict {
	st.Statements++
	v := eventVerdict{node: -1}
	if e.User == nil || e.Course == nil {
		st.StatementsNoKey++
		return v
	}
	exp := Experiments[str(e.Hardware)]
	if exp == nil && e.GraphNode != nil {
		if exp = nodeExp[*e.GraphNode]; exp != nil {
			st.HardwareFromNode++
		}
	}
	if exp == nil {
		st.StatementsNoHardware++
		return v
	}
	v.key, v.ok = Key{User: *e.User, Exp: exp.Name, Course: *e.Course}, true
	v.verb = str(e.Verb)
	v.session = v.verb == SessionStarted && e.T != nil
	if e.GraphNode == nil {
		return v
	}
	switch i := exp.index(*e.GraphNode); {
	case i < 0:
		st.UnknownNodes++
	case e.T == nil:
		st.NoTime++
	default:
		v.node = i
	}
	return v
}

// nodeExp maps every graph node to the experiment that has it, for the
// nodes only one experiment has.
var nodeExp = func() map[string]*Experiment {
	m := map[string]*Experiment{}
	seen := map[string]int{}
	for _, e := range Experiments {
		for _, n := range e.Nodes {
			m[n] = e
			seen[n]++
		}
	}
	for n, c := range seen {
		if c > 1 {
			delete(m, n)
		}
	}
	return m
}()

// AddEvent adds one statement's step, if it has one, to the Builder's
// graphs (the Builder draws matrices only: usage counts and sessions are
// the live Store's).
func (b *Builder) AddEvent(e Event) {
	v := b.Stats.classifyEvent(e)
	if !v.ok {
		return
	}
	g := b.graph(v.key)
	if v.node < 0 {
		return
	}
	// Statements are not the reference's: they leave its arrival-order
	// figures (hardware, lastT, unordered) alone.
	g.steps = append(g.steps, step{t: *e.T, arrival: e.Arrival, node: uint8(v.node)})
	b.Stats.Commands++
}
