package dashboard

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Course is a course config, as the dashboards load it: per kind of
// hardware, the tasks a student is compared with.
type Course struct {
	Name       string              `json:"name"`
	Parameters map[string]Hardware `json:"parameters"`
}

// Hardware is a course's settings for one kind of hardware.
type Hardware struct {
	Tasks                  []Task  `json:"tasks"`
	MaxTaskCompletionValue float64 `json:"max_task_completion_value"`
}

// Task is one task of a course: the dashboards show readable_string and
// key task completion by code_string.
type Task struct {
	Readable string `json:"readable_string"`
	Code     string `json:"code_string"`
}

// DefaultMaxTaskCompletion is the dissimilarity the dashboards read as
// "have you connected yet?" when a course config gives none.
const DefaultMaxTaskCompletion = 100

// LoadCourses reads every *.json of dir as a course config, by name. No
// dir, no courses; a file that is not a course config is an error naming it.
func LoadCourses(dir string) (map[string]Course, error) {
	courses := map[string]Course{}
	if dir == "" {
		return courses, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("course configs: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("course config: %w", err)
		}
		var c Course
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("course config %s: %w", path, err)
		}
		if c.Name == "" {
			return nil, fmt.Errorf("course config %s: no name", path)
		}
		if _, ok := courses[c.Name]; ok {
			return nil, fmt.Errorf("course config %s: course %q is in another file of %s too", path, c.Name, dir)
		}
		for hw, p := range c.Parameters {
			for _, t := range p.Tasks {
				if t.Code == "" {
					return nil, fmt.Errorf("course config %s: a %s task without code_string", path, hw)
				}
			}
		}
		courses[c.Name] = c
	}
	return courses, nil
}

// tasks are the task codes a student of course on hardware is compared
// with: the course config's, else every comparison graph named
// hardware-course-* (as the 2023 server picked them).
func (h *Handler) tasks(course, hardware string) (codes []string, max float64) {
	max = DefaultMaxTaskCompletion
	if c, ok := h.opts.Courses[course]; ok {
		if p, ok := c.Parameters[hardware]; ok {
			if p.MaxTaskCompletionValue > 0 {
				max = p.MaxTaskCompletionValue
			}
			for _, t := range p.Tasks {
				codes = append(codes, t.Code)
			}
			return codes, max
		}
	}
	prefix := hardware + "-" + course + "-"
	for name := range h.opts.Comparisons {
		if strings.HasPrefix(name, prefix) {
			codes = append(codes, name)
		}
	}
	slices.Sort(codes)
	return codes, max
}
