// Package duckdbtest lets tests read lablog's files with DuckDB, a reader that
// shares no code with lablog, by running node/query.mjs (the @duckdb/node-api
// client). Setup, once: (cd internal/testing/duckdbtest/node && npm ci).
//
// Without node or node_modules the query skips the test, unless CI=true or
// LABLOG_REQUIRE_DUCKDB=1, where a missing reader is a failure: the check must
// not silently vanish from the builds that matter.
package duckdbtest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the folder holding query.mjs and package.json.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "node")
}

// Required reports whether a missing DuckDB must fail rather than skip.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("LABLOG_REQUIRE_DUCKDB") == "1"
}

// Available returns why DuckDB cannot run here, or "" when it can.
func Available() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed"
	}
	if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "@duckdb", "node-api")); err != nil {
		return "node_modules missing: run (cd internal/testing/duckdbtest/node && npm ci)"
	}
	return ""
}

// Query runs sql in an in-memory DuckDB and returns the rows. Numbers decode
// as json.Number (BIGINTs past 2^53 arrive as strings), timestamps as UTC ISO
// 8601 strings with microseconds, BLOBs as base64 strings; see query.mjs.
func Query(t testing.TB, sql string) []map[string]any {
	t.Helper()
	if why := Available(); why != "" {
		if Required() {
			t.Fatalf("duckdb reader required (CI=true or LABLOG_REQUIRE_DUCKDB=1) but unavailable: %s", why)
		}
		t.Skipf("skipping DuckDB check: %s", why)
	}
	cmd := exec.Command("node", "query.mjs", sql)
	cmd.Dir = Dir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("duckdb query failed: %v\nsql: %s\n%s", err, sql, stderr.Bytes())
	}
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	var rows []map[string]any
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("duckdb output is not JSON rows: %v\n%s", err, stdout.Bytes())
	}
	return rows
}
