// Package testsummary reads `go test -json` and writes what plain `go test`
// would (each package's closing line, the output of failed tests), then a
// line counting the skipped tests, grouped by the reason they gave, so a
// run that silently skipped the tests of a missing server says so.
package testsummary

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// Result is what a run came to.
type Result struct {
	Failed  bool           // a test, a package or a build failed
	Skipped map[string]int // reason -> number of tests skipped for it
}

// SkipCount is the number of skipped tests.
func (r Result) SkipCount() int {
	n := 0
	for _, c := range r.Skipped {
		n += c
	}
	return n
}

// skipReason takes "    file_test.go:12: reason" from a skipped test's output.
var skipReason = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)

// Summarize copies in's events to out as plain go test output, then the
// skip line, and returns the result.
func Summarize(in io.Reader, out io.Writer) (Result, error) {
	res := Result{Skipped: map[string]int{}}
	logs := map[string][]string{} // package and test -> output so far
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, sc.Text()) // not an event: go's own message
			continue
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			res.Failed = true
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" { // plain go test prints only the ok line
				fmt.Fprint(out, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			res.Failed = true
		case e.Action == "output":
			if !strings.HasPrefix(e.Output, "=== ") { // -json's RUN, PAUSE, CONT, NAME
				logs[key] = append(logs[key], e.Output)
			}
		case e.Action == "fail":
			res.Failed = true
			fmt.Fprint(out, strings.Join(logs[key], ""))
			delete(logs, key)
		case e.Action == "skip":
			res.Skipped[reason(logs[key])]++
			delete(logs, key)
		case e.Action == "pass":
			delete(logs, key)
		}
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("reading go test -json: %w", err)
	}
	fmt.Fprintln(out, res.Line())
	return res, nil
}

// reason is the message a skipped test gave (its last log line).
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if m := skipReason.FindStringSubmatch(strings.TrimRight(lines[i], "\n")); m != nil {
			return m[1]
		}
	}
	return "no reason given"
}

// Line says how many tests were skipped and why, most common reason first.
func (r Result) Line() string {
	if len(r.Skipped) == 0 {
		return "skipped: none"
	}
	reasons := make([]string, 0, len(r.Skipped))
	for k := range r.Skipped {
		reasons = append(reasons, k)
	}
	sort.Slice(reasons, func(i, j int) bool {
		a, b := reasons[i], reasons[j]
		if r.Skipped[a] != r.Skipped[b] {
			return r.Skipped[a] > r.Skipped[b]
		}
		return a < b
	})
	var b strings.Builder
	tests := "tests"
	if r.SkipCount() == 1 {
		tests = "test"
	}
	fmt.Fprintf(&b, "skipped: %d %s", r.SkipCount(), tests)
	for _, k := range reasons {
		fmt.Fprintf(&b, "\n  %3d  %s", r.Skipped[k], k)
	}
	return b.String()
}
