package dashboard

import (
	"strconv"

	"github.com/practable/lablog/internal/analytics"
)

// Graph is the answer of /studentGraph and /comparisonGraph, in the shape
// the dashboards draw with vis-network: nodes as {id, label}, edges with
// the count as their label, and each node's in-degree centrality.
type Graph struct {
	Nodes    []Node   `json:"nodes"`
	Edges    []Edge   `json:"edges"`
	NodeInfo NodeInfo `json:"node_info"`
	Hardware string   `json:"hardware"`
}

// Node is one node of a Graph.
type Node struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// Edge is one transition of a Graph: how often from was followed by to.
type Edge struct {
	From   string  `json:"from"`
	To     string  `json:"to"`
	Label  string  `json:"label"`
	Weight float64 `json:"weight"`
	Arrows string  `json:"arrows"`
}

// NodeInfo holds per-node figures.
type NodeInfo struct {
	InCentrality map[string]float64 `json:"in_centrality"`
}

// emptyGraph is "no graph yet" for hardware: no nodes, no edges.
func emptyGraph(hardware string) Graph {
	return Graph{Nodes: []Node{}, Edges: []Edge{}, NodeInfo: NodeInfo{InCentrality: map[string]float64{}}, Hardware: hardware}
}

// graphOf draws m (over the nodes of hardware, in their fixed order). A
// graph without a single edge is "no graph yet"; one with edges lists
// every node of its hardware, since the dashboards drop the edges of a
// graph whose node list is empty.
func graphOf(m *analytics.Matrix, hardware string) Graph {
	g := emptyGraph(hardware)
	if m.Total() == 0 {
		return g
	}
	for _, n := range m.Nodes {
		g.Nodes = append(g.Nodes, Node{ID: n, Label: n})
	}
	for i, row := range m.W {
		for j, w := range row {
			if w != 0 {
				g.Edges = append(g.Edges, Edge{From: m.Nodes[i], To: m.Nodes[j],
					Label: strconv.FormatFloat(w, 'f', -1, 64), Weight: w, Arrows: "to"})
			}
		}
	}
	g.NodeInfo.InCentrality = inCentrality(m)
	return g
}

// inCentrality is networkx's in_degree_centrality of m's graph: a node's
// in-degree, the number of distinct nodes with an edge into it (itself
// too, for a self-loop), over n-1 for the n nodes of the graph.
func inCentrality(m *analytics.Matrix) map[string]float64 {
	out := make(map[string]float64, len(m.Nodes))
	n := len(m.Nodes)
	for j, node := range m.Nodes {
		in := 0
		for i := range m.W {
			if m.W[i][j] != 0 {
				in++
			}
		}
		if n > 1 {
			out[node] = float64(in) / float64(n-1)
		} else {
			out[node] = 1 // networkx's answer for a single node
		}
	}
	return out
}
