package wire

import (
	"testing"

	"github.com/practable/lablog/internal/config"
)

// One probe per endpoint, asking what that endpoint answers cheaply.
func TestProbesOnePerEndpoint(t *testing.T) {
	ps := probes{}
	relayA := ps.of(config.Stream{Name: "spin30", Kind: config.KindRelay, Relay: "https://relay.example/access"})
	relayB := ps.of(config.Stream{Name: "spin31", Kind: config.KindRelay, Relay: "https://relay.example/access"})
	host := ps.of(config.Stream{Name: "spin32", Kind: config.KindRelayHost, RelayHost: "ws://127.0.0.1:8888"})
	url1 := ps.of(config.Stream{Name: "cam0", Kind: config.KindURL, URL: "wss://cams.example/cam0?token=x"})
	url2 := ps.of(config.Stream{Name: "cam1", Kind: config.KindURL, URL: "wss://cams.example/cam1"})
	other := ps.of(config.Stream{Name: "cam2", Kind: config.KindURL, URL: "ws://other.example:81/cam2"})
	if relayA != relayB || url1 != url2 {
		t.Error("streams of one endpoint have probes of their own")
	}
	if relayA == host || host == url1 || url1 == other {
		t.Error("different endpoints share a probe")
	}
	for p, want := range map[string]string{
		relayA.URL: "https://relay.example/access",
		host.URL:   "http://127.0.0.1:8888/healthcheck",
		url1.URL:   "https://cams.example/cam0?token=x",
		other.URL:  "http://other.example:81/cam2",
	} {
		if p != want {
			t.Errorf("probe URL %q, want %q", p, want)
		}
	}
	if len(ps) != 4 {
		t.Errorf("%d probes, want 4", len(ps))
	}
	if p := ps.of(config.Stream{Name: "x", Kind: config.KindURL, URL: "::not a url"}); p != nil {
		t.Errorf("a stream without a usable URL got a probe of %q", p.URL)
	}
}
