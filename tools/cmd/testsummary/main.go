// Command testsummary reads `go test -json` on stdin and prints plain go test
// output and a count of the skipped tests by reason (make test's unit
// phase). It exits 1 when anything failed.
package main

import (
	"fmt"
	"os"

	"github.com/practable/lablog/tools/testsummary"
)

func main() {
	res, err := testsummary.Summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	if res.Failed {
		os.Exit(1)
	}
}
