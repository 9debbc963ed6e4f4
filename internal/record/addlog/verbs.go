package addlog

// verbs defines each verb today's lab UIs send, in lablog's own words; a
// statement's verb.definition points at GET /verbs/{name}.
var verbs = map[string]string{
	"session-started":   "The student's lab session began: the UI loaded with a booking.",
	"session-expired":   "The booking ran out and the UI closed the session (sent by the system, not the student).",
	"clicked":           "The student clicked a control; object.id names it, context.graph_node the command it stands for, if any.",
	"changed":           "The student changed an input; object.value holds the new value.",
	"data-hovered":      "The student pointed at a data point of a graph.",
	"mouse-entered":     "The pointer entered a part of the UI (off by default in the UIs).",
	"pressed-hotkey":    "The student pressed a keyboard shortcut; object.id is the key.",
	"dragged-component": "The student started dragging a panel of the UI.",
	"dropped-component": "The student dropped a dragged panel in a new place.",
	"opened-component":  "The student opened a panel of the UI.",
	"closed-component":  "The student closed a panel of the UI.",
	"experiment-error":  "The experiment reported an error (type experiment).",
}
