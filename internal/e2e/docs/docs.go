// Package docs checks lablog's Markdown documentation (README.md and
// docs/*.md): every relative link must lead to a file or folder of the
// repository, and every #anchor to a heading of the file it names, with
// anchors made as GitHub makes them. It has no other job; its test runs the
// check over the repository.
package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Files are the documentation files of the repository at root: README.md
// and every docs/*.md, sorted.
func Files(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, fmt.Errorf("docs: %w", err)
	}
	return append([]string{filepath.Join(root, "README.md")}, docs...), nil
}

// Link is one link found in a Markdown file.
type Link struct {
	File   string // the file holding it
	Line   int    // 1-based
	Target string // as written
}

// Problem is a link that does not resolve.
type Problem struct {
	Link
	Why string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Target, p.Why)
}

// Check reads files and reports every relative link or anchor among them
// that does not resolve, and how many links it checked. Absolute URLs
// (with a scheme) are not fetched: this is about the repository's own
// structure.
func Check(files []string) (problems []Problem, checked int, err error) {
	anchors := map[string]map[string]bool{} // file -> its anchors, read once
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		p, err := parse(path)
		if err != nil {
			return nil, err
		}
		anchors[path] = p.anchors
		return p.anchors, nil
	}
	for _, f := range files {
		p, err := parse(f)
		if err != nil {
			return nil, 0, err
		}
		anchors[f] = p.anchors
		for _, l := range p.links {
			if hasScheme(l.Target) {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(l.Target, "#")
			target := f
			if path != "" {
				target = filepath.Join(filepath.Dir(f), filepath.FromSlash(path))
				st, err := os.Stat(target)
				if err != nil {
					problems = append(problems, Problem{l, "no such file or folder"})
					continue
				}
				if st.IsDir() || !strings.HasSuffix(target, ".md") {
					if frag != "" {
						problems = append(problems, Problem{l, "an anchor into a file that is not Markdown"})
					}
					continue
				}
			}
			if frag == "" {
				continue
			}
			a, err := anchorsOf(target)
			if err != nil {
				return nil, 0, err
			}
			if !a[frag] {
				problems = append(problems, Problem{l, "no heading with this anchor in " + filepath.Base(target)})
			}
		}
	}
	return problems, checked, nil
}

// hasScheme reports whether target is an absolute URL (https:, mailto:, ...).
var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

func hasScheme(target string) bool { return schemeRE.MatchString(target) }

type parsed struct {
	anchors map[string]bool
	links   []Link
}

var (
	headingRE = regexp.MustCompile(`^#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$`)
	// [text](target) or [text](target "title"); images too.
	linkRE = regexp.MustCompile(`\[[^\]]*\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)`)
	// [label]: target, a reference definition.
	refRE = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:[ \t]+<?(\S+?)>?(?:[ \t].*)?$`)
	// an inline link inside a heading counts by its text only.
	headLinkRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// parse reads a Markdown file's heading anchors and its links outside
// code blocks and code spans. Links are looked for per paragraph, since
// a link's text (or a code span) may run over a line break.
func parse(path string) (parsed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return parsed{}, fmt.Errorf("docs: %w", err)
	}
	p := parsed{anchors: map[string]bool{}}
	seen := map[string]int{}
	var para []string
	start := 0 // line of para[0]
	flush := func() {
		text := stripCode(strings.Join(para, "\n"))
		lineAt := func(i int) int { return start + strings.Count(text[:i], "\n") }
		for _, m := range linkRE.FindAllStringSubmatchIndex(text, -1) {
			p.links = append(p.links, Link{File: path, Line: lineAt(m[0]), Target: text[m[2]:m[3]]})
		}
		for _, m := range refRE.FindAllStringSubmatchIndex(text, -1) {
			p.links = append(p.links, Link{File: path, Line: lineAt(m[0]), Target: text[m[2]:m[3]]})
		}
		para = para[:0]
	}
	fence := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			flush()
			fence = trimmed[:3]
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			flush()
			a := Anchor(headLinkRE.ReplaceAllString(m[1], "$1"))
			// GitHub numbers repeated headings: x, x-1, x-2, ...
			if k := seen[a]; k > 0 {
				seen[a]++
				a = fmt.Sprintf("%s-%d", a, k)
			} else {
				seen[a] = 1
			}
			p.anchors[a] = true
			start = n
			para = append(para, line)
			flush()
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if len(para) == 0 {
			start = n
		}
		para = append(para, line)
	}
	flush()
	if err := sc.Err(); err != nil {
		return parsed{}, fmt.Errorf("docs: %s: %w", path, err)
	}
	return p, nil
}

// Anchor is the anchor GitHub gives a heading's text: lower case, spaces
// made '-', and every character but letters, digits, '-' and '_' dropped.
func Anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// stripCode removes the code spans of a paragraph: a run of backticks up
// to the next run of as many. An unclosed run stays as text, as in
// Markdown.
func stripCode(line string) string {
	var b strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '`' {
			b.WriteByte(line[i])
			i++
			continue
		}
		n := 0
		for i+n < len(line) && line[i+n] == '`' {
			n++
		}
		end := closing(line[i+n:], n)
		if end < 0 {
			b.WriteString(line[i : i+n])
			i += n
			continue
		}
		// Keep the span's line breaks, so line numbers still count.
		b.WriteString(strings.Repeat("\n", strings.Count(line[i:i+n+end+n], "\n")))
		i += n + end + n
	}
	return b.String()
}

// closing is where in s a run of exactly n backticks starts, or -1.
func closing(s string, n int) int {
	for j := 0; j < len(s); {
		if s[j] != '`' {
			j++
			continue
		}
		k := 0
		for j+k < len(s) && s[j+k] == '`' {
			k++
		}
		if k == n {
			return j
		}
		j += k
	}
	return -1
}
