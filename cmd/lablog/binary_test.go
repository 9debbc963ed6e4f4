package main

import (
	"testing"

	"github.com/practable/lablog/internal/testing/lablogbin"
)

// lablogBinary is the real binary with its failpoints compiled in, which
// the crash tests arm; built once per test run by internal/testing/lablogbin,
// the one builder of every suite that runs the binary.
func lablogBinary(t testing.TB) string {
	t.Helper()
	return lablogbin.Path(t)
}

// repoRoot is the repository: the folder of go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := lablogbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
