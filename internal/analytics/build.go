package analytics

import (
	"cmp"
	"slices"

	"github.com/practable/lablog/internal/record/frame"
)

// Key names one student graph: a user on one experiment in one course.
type Key struct{ User, Exp, Course string }

func (k Key) String() string { return k.User + "-" + k.Exp + "-" + k.Course }

// Message is what analytics needs of one logged message. Arrival orders
// messages with the same t: the order they reached lablog (received time,
// or position in a file).
type Message struct {
	User, Exp, Course, Hardware, Type *string
	T                                 *int64
	Payload                           []byte
	Arrival                           int64
}

// FromFrame turns a split message into a Message.
func FromFrame(m frame.Message, arrival int64) Message {
	return Message{User: m.User, Exp: m.Exp, Course: m.Course, Hardware: m.Hardware, Type: m.Type,
		T: m.T, Payload: m.Payload, Arrival: arrival}
}

// Stats counts what went into the matrices and every place where lablog
// and the reference part ways (docs/analytics.md, "Learning analytics").
type Stats struct {
	Frames            int64 `json:"frames"`              // frames read (lines, archive frames)
	Messages          int64 `json:"messages"`            // JSON messages in them
	Unparsed          int64 `json:"unparsed"`            // messages that are not JSON objects
	GluedFrames       int64 `json:"glued_frames"`        // frames holding several messages: the reference lost all of them
	GluedMessages     int64 `json:"glued_messages"`      // messages in those frames, counted here
	Commands          int64 `json:"commands"`            // commands counted into a matrix
	NotCommands       int64 `json:"not_commands"`        // messages whose payload.log is no command (requests, responses, ...)
	NonLogType        int64 `json:"non_log_type"`        // counted commands whose type is not "log" (legacy, "analytics")
	NoKey             int64 `json:"no_key"`              // commands without user, exp or course: no graph to count them in
	NoTime            int64 `json:"no_time"`             // commands without a numeric t: cannot be ordered, skipped
	UnknownExp        int64 `json:"unknown_exp"`         // commands for an experiment the reference has no nodes for
	ForeignCommands   int64 `json:"foreign_commands"`    // commands of another experiment: skipped (the reference raised KeyError)
	GraphsLostByRef   int64 `json:"graphs_lost_by_ref"`  // graphs with such a command: the reference wrote none
	UnsortedSingleHW  int64 `json:"unsorted_single_hw"`  // one-hardware graphs whose arrival order is not t order: the reference kept arrival order
	Feedback          int64 `json:"feedback"`            // feedback messages counted for enjoyment
	FeedbackIgnored   int64 `json:"feedback_ignored"`    // feedback with an unknown state or subject (the reference dropped them too)
	ImportedMatrices  int64 `json:"imported_matrices"`   // -adjacency.csv files added in (--logs)
	ImportDroppedEdge int64 `json:"import_dropped_edge"` // weight of imported cells whose nodes the experiment lacks
	DamagedBlocks     int64 `json:"damaged_blocks"`      // buffer blocks failing their checksum, not read
	// /addLog statements (not the reference's: it had none).
	Statements           int64 `json:"statements"`             // statements read
	StatementsNoKey      int64 `json:"statements_no_key"`      // without a user or course: no graph to count them in
	StatementsNoHardware int64 `json:"statements_no_hardware"` // for no known kind of hardware (and no node to tell it by)
	HardwareFromNode     int64 `json:"hardware_from_node"`     // the call named no known hardware; its graph node did
	UnknownNodes         int64 `json:"unknown_nodes"`          // graph nodes the hardware kind does not have
}

// step is one command of a graph's sequence.
type step struct {
	t, arrival int64
	node       uint8
}

// graph collects one key's commands until Matrices orders and counts them.
type graph struct {
	steps     []step
	hardware  string // the one hardware seen, or "\x00" for several
	lastT     int64
	unordered bool // a step arrived with a t before the previous step's
	foreign   bool
	imported  *Matrix
	feedback  map[[2]string]int
}

// Builder collects messages and makes the matrices. Not safe for
// concurrent use.
type Builder struct {
	Stats  Stats
	graphs map[Key]*graph
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{graphs: map[Key]*graph{}} }

// AddFrame splits a text frame and adds its messages; arrival is the
// frame's place in arrival order.
func (b *Builder) AddFrame(data []byte, arrival int64) {
	msgs := frame.Split(data)
	b.Stats.Frames++
	if len(msgs) > 1 {
		b.Stats.GluedFrames++
		b.Stats.GluedMessages += int64(len(msgs))
	}
	for _, m := range msgs {
		if m.Err != "" {
			b.Stats.Messages++
			b.Stats.Unparsed++
			continue
		}
		b.Add(FromFrame(m, arrival))
	}
}

func (b *Builder) graph(k Key) *graph {
	g := b.graphs[k]
	if g == nil {
		g = &graph{}
		b.graphs[k] = g
	}
	return g
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// verdict is what one message means for the graphs.
type verdict struct {
	kind     verdictKind
	key      Key
	node     uint8     // vCommand: the node
	name     string    // vCommand: the command (payload.log), for usage counts
	feedback [2]string // vFeedback: state, subject
}

type verdictKind uint8

const (
	vNothing  verdictKind = iota // counted in the stats only
	vCommand                     // a step of key's graph
	vForeign                     // a command of another experiment than key's
	vFeedback                    // a feedback count of key
)

// classify decides what m is, counting in st everything but the per-graph
// figures (commands, foreign commands and graphs lost), which the caller
// counts once it has the graph: the Builder in memory, the live Store in
// the buffer. It is the one definition both use.
func (st *Stats) classify(m Message) verdict {
	st.Messages++
	if str(m.Type) == "feedback" {
		return st.classifyFeedback(m)
	}
	log := frame.StringField(m.Payload, "log")
	if log == nil {
		st.NotCommands++
		return verdict{}
	}
	owner, ok := commandExp[*log]
	if !ok {
		st.NotCommands++
		return verdict{}
	}
	if m.User == nil || m.Exp == nil || m.Course == nil {
		st.NoKey++
		return verdict{}
	}
	k := Key{User: *m.User, Exp: *m.Exp, Course: *m.Course}
	e := Experiments[k.Exp]
	if e == nil {
		st.UnknownExp++
		return verdict{}
	}
	if m.T == nil {
		st.NoTime++
		return verdict{}
	}
	if owner != e.Name {
		return verdict{kind: vForeign, key: k}
	}
	if str(m.Type) != "log" {
		st.NonLogType++
	}
	return verdict{kind: vCommand, key: k, node: uint8(e.index(e.Commands[*log])), name: *log}
}

// Add adds one message.
func (b *Builder) Add(m Message) {
	v := b.Stats.classify(m)
	switch v.kind {
	case vFeedback:
		g := b.graph(v.key)
		if g.feedback == nil {
			g.feedback = map[[2]string]int{}
		}
		g.feedback[v.feedback]++
		return
	case vForeign:
		b.Stats.ForeignCommands++
		if g := b.graph(v.key); !g.foreign {
			g.foreign = true
			b.Stats.GraphsLostByRef++
		}
		return
	case vCommand:
	default:
		return
	}
	g := b.graph(v.key)
	hw := str(m.Hardware)
	switch {
	case len(g.steps) == 0:
		g.hardware = hw
	case g.hardware != hw:
		g.hardware = "\x00"
	}
	if len(g.steps) > 0 && *m.T < g.lastT {
		g.unordered = true
	}
	g.lastT = *m.T
	g.steps = append(g.steps, step{t: *m.T, arrival: m.Arrival, node: v.node})
	b.Stats.Commands++
}

// Import adds an existing matrix (the old client's -adjacency.csv) to k's
// graph, laid over the experiment's nodes (older pendulum files lack
// "record").
func (b *Builder) Import(k Key, m *Matrix) {
	e := Experiments[k.Exp]
	if e == nil {
		b.Stats.UnknownExp++
		return
	}
	over, dropped := m.Over(e.Nodes)
	g := b.graph(k)
	if g.imported == nil {
		g.imported = over
	} else {
		for i := range over.W {
			for j := range over.W[i] {
				g.imported.W[i][j] += over.W[i][j]
			}
		}
	}
	b.Stats.ImportedMatrices++
	b.Stats.ImportDroppedEdge += int64(dropped)
}

// Keys lists the graphs in a stable order: by exp, course, user.
func (b *Builder) Keys() []Key {
	keys := make([]Key, 0, len(b.graphs))
	for k := range b.graphs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}

// compareKeys orders graphs by exp, course, user.
func compareKeys(a, c Key) int {
	return cmp.Or(cmp.Compare(a.Exp, c.Exp), cmp.Compare(a.Course, c.Course), cmp.Compare(a.User, c.User))
}

// Graph is one student graph: its matrix and what went into it.
type Graph struct {
	Key      Key
	Matrix   *Matrix
	Commands int
	Feedback map[[2]string]int // (state, subject) -> count
}

// Matrices orders each graph's commands by t (ties by arrival, then by the
// order they were added) and counts each consecutive pair as one edge.
// Graphs with neither commands nor an imported matrix (feedback only) get
// an all-zero matrix, as the reference would write for them.
func (b *Builder) Matrices() []Graph {
	var out []Graph
	for _, k := range b.Keys() {
		g := b.graphs[k]
		e := Experiments[k.Exp]
		if e == nil {
			continue
		}
		if g.unordered && g.hardware != "\x00" {
			b.Stats.UnsortedSingleHW++
			g.unordered = false // count once even if Matrices is called again
		}
		slices.SortStableFunc(g.steps, func(x, y step) int {
			return cmp.Or(cmp.Compare(x.t, y.t), cmp.Compare(x.arrival, y.arrival))
		})
		m := NewMatrix(e.Nodes)
		if g.imported != nil {
			for i := range m.W {
				copy(m.W[i], g.imported.W[i])
			}
		}
		for i := 1; i < len(g.steps); i++ {
			m.W[g.steps[i-1].node][g.steps[i].node]++
		}
		out = append(out, Graph{Key: k, Matrix: m, Commands: len(g.steps), Feedback: g.feedback})
	}
	return out
}
