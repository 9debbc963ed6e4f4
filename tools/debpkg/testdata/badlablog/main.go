// Command badlablog stands in for a broken lablog in the update test: it
// says its version as lablog does, then fails at once when asked to run.
package main

import (
	"fmt"
	"os"
)

// version is set with -ldflags -X, like lablog's, so that the package
// builder finds it in the binary.
var version = "unset"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("lablog " + version)
		return
	}
	fmt.Fprintln(os.Stderr, "badlablog: broken on purpose")
	os.Exit(1)
}
