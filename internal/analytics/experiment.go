// Package analytics rebuilds what the practable learning-analytics server
// computed from a lab's logging stream: per (user, experiment, course) the
// transition (adjacency) matrix of the hardware commands the student sent,
// indicators that compare it with experts' comparison graphs, and drawings
// of it. The matrices are written in the reference's CSV format, byte for
// byte, so a server that lost its data can be restored from lablog's
// archive. Where the reference fails or depends on file order, this package
// does the sensible thing and counts it in Stats (docs/analytics.md,
// "Learning analytics", lists each difference).
package analytics

import "math"

// Point is a node's place in the reference's drawing plane (x right, y up).
type Point struct{ X, Y float64 }

// Experiment is one kind of lab hardware: its graph's nodes in the
// reference's CSV order, which payload.log values are commands and which
// node each one is, and the fixed layout used for centroids and pictures.
type Experiment struct {
	Name     string
	Nodes    []string
	Commands map[string]string // payload.log -> node
	Layout   map[string]Point
	// LayoutOrder is the order the reference summed the centroid in,
	// which decides the last bits of the result.
	LayoutOrder []string
}

var sin60 = math.Sin(math.Pi / 3)

// Experiments are the experiments the reference knows, by name.
var Experiments = map[string]*Experiment{
	"spinner": {
		Name:  "spinner",
		Nodes: []string{"voltage_step", "voltage_ramp", "position_step", "position_ramp", "speed_step", "speed_ramp"},
		Commands: map[string]string{
			"voltage": "voltage_step", "voltage_ramp": "voltage_ramp",
			"position": "position_step", "position_ramp": "position_ramp",
			"speed": "speed_step", "speed_ramp": "speed_ramp",
		},
		// The reference's centroid vertices (a hexagon).
		Layout: map[string]Point{
			"voltage_step": {0.5, sin60}, "voltage_ramp": {-0.5, sin60},
			"position_step": {1, 0}, "position_ramp": {-1, 0},
			"speed_step": {0.5, -sin60}, "speed_ramp": {-0.5, -sin60},
		},
		LayoutOrder: []string{"voltage_step", "voltage_ramp", "position_step", "position_ramp", "speed_step", "speed_ramp"},
	},
	"pendulum": {
		Name:  "pendulum",
		Nodes: []string{"start", "brake", "load", "free", "sampling", "drive_perc", "brake_perc", "measuring_tools", "record"},
		Commands: map[string]string{
			"start": "start", "brake": "brake", "load": "load", "free": "free", "sampling": "sampling",
			"drive_perc": "drive_perc", "brake_perc": "brake_perc", "measuring_tools": "measuring_tools", "record": "record",
		},
		// The reference's centroid vertices (nine points on a circle).
		Layout: map[string]Point{
			"start": {0, 1}, "brake": {0.64, 0.77}, "free": {0.98, 0.17}, "load": {0.87, -0.5},
			"sampling": {0.34, -0.94}, "drive_perc": {-0.34, -0.94}, "brake_perc": {-0.87, -0.5},
			"measuring_tools": {-0.98, 0.17}, "record": {-0.64, 0.77},
		},
		LayoutOrder: []string{"start", "brake", "free", "load", "sampling", "drive_perc", "brake_perc", "measuring_tools", "record"},
	},
}

// commandExp maps every command to the experiment it belongs to, to tell a
// command of another experiment from a message that is no command at all.
var commandExp = func() map[string]string {
	m := map[string]string{}
	for name, e := range Experiments {
		for log := range e.Commands {
			m[log] = name
		}
	}
	return m
}()

// index is the position of node in e.Nodes, -1 if absent.
func (e *Experiment) index(node string) int {
	for i, n := range e.Nodes {
		if n == node {
			return i
		}
	}
	return -1
}
