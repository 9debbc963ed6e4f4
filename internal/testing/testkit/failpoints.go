package testkit

import (
	"os"
	"testing"

	"github.com/practable/lablog/internal/platform/failpoint"
)

// RequireFailpointEnv, set to 1 (make test does), turns the skip of a test
// that needs failpoints in its own test binary into a failure.
const RequireFailpointEnv = "LABLOG_REQUIRE_FAILPOINT"

// NeedFailpoints skips a test whose own binary must hold failpoints unless
// it was built with go test -tags failpoint.
func NeedFailpoints(t testing.TB) {
	t.Helper()
	if failpoint.Enabled {
		return
	}
	if os.Getenv(RequireFailpointEnv) == "1" {
		t.Fatalf("%s=1 but this test binary was built without -tags failpoint", RequireFailpointEnv)
	}
	t.Skip("needs failpoints: go test -tags failpoint")
}
