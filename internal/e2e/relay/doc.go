// Package relay holds lablog's conformance tests against the real
// practable relay: `relay serve`, `relay host` and `relay client file`,
// built from source and named by the RELAY_BIN environment variable, run
// as processes beside the real `lablog run`. Serve and host listen on
// every interface, so the tests re-execute themselves in a network
// namespace of their own in which only lo exists (root and unshare are
// needed). Without RELAY_BIN the tests skip, except under CI=true, where
// they fail. docs/relay.md ("Testing against the real relay") says how to
// run them.
package relay
