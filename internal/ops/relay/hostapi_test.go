package relay

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/testing/relaytest"
)

func newHost(t *testing.T, opts relaytest.HostOptions) (*relaytest.Host, *HostAPI) {
	t.Helper()
	h, err := relaytest.NewHost(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	api, err := NewHostAPI(h.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return h, api
}

func TestHostAPIAgainstTheDouble(t *testing.T) {
	h, api := newHost(t, relaytest.HostOptions{})
	if api.Base() != strings.Replace(h.URL(), "ws://", "http://", 1) {
		t.Fatalf("base %s for %s", api.Base(), h.URL())
	}
	if err := api.Healthy(ctx(t)); err != nil {
		t.Fatal(err)
	}
	all, err := api.All(ctx(t))
	if err != nil || len(all) != 0 {
		t.Fatalf("All on a fresh host: %v %v", all, err)
	}
	r := Rule{ID: "spin30", Stream: "spin30", Destination: "http://127.0.0.1:1/session/spin30-log", Token: "tok.en.x"}
	if err := api.Put(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	r2 := r
	r2.Token = "tok.en.y"
	if err := api.Put(ctx(t), r2); err != nil {
		t.Fatal(err)
	}
	all, err = api.All(ctx(t))
	if err != nil || len(all) != 1 || all["spin30"] != r2 {
		t.Fatalf("All = %+v, %v: want the replaced rule", all, err)
	}
	got, ok, err := api.Get(ctx(t), "spin30")
	if err != nil || !ok || got != r2 {
		t.Fatalf("Get = %+v %v %v", got, ok, err)
	}
	if _, ok, err := api.Get(ctx(t), "nope"); ok || err != nil {
		t.Fatalf("Get(unknown) = %v %v: the host's empty rule means none", ok, err)
	}
	if err := api.Delete(ctx(t), "all"); err == nil {
		t.Fatal(`Delete("all") accepted: on the host it deletes nothing but a rule named all`)
	}
	if err := api.Delete(ctx(t), "spin30"); err != nil {
		t.Fatal(err)
	}
	if len(h.Rules()) != 0 {
		t.Fatalf("rules left %+v", h.Rules())
	}
	if _, _, err := api.Get(ctx(t), "a b"); err == nil {
		t.Fatal("an id with a space was sent")
	}
	h.Stop()
	if err := api.Healthy(ctx(t)); err == nil {
		t.Fatal("a stopped host is healthy")
	}
}

// A host that answers badly gets errors that never quote its body: it may
// hold tokens.
func TestHostAPIErrorsHoldNoTokens(t *testing.T) {
	const tok = "eyJ.secret-token.sig"
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	api, err := NewHostAPI(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	status, body = 500, `{"token":"`+tok+`"}`
	err = api.Put(ctx(t), Rule{ID: "a", Stream: "a", Token: tok})
	if err == nil || strings.Contains(err.Error(), tok) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("Put error %v", err)
	}
	status, body = 200, `{"a":{"token":"`+tok+`"`
	if _, err := api.All(ctx(t)); err == nil || strings.Contains(err.Error(), tok) {
		t.Fatalf("All error %v", err)
	}
	status, body = 200, "null"
	if all, err := api.All(ctx(t)); err != nil || all == nil || len(all) != 0 {
		t.Fatalf("All(null) = %v %v", all, err)
	}
	for _, c := range []struct {
		body string
		ok   bool
	}{{"\"ok\"\n", true}, {`"ok"`, true}, {"ok", true}, {"not ok", false}, {`{"healthcheck":"ok"}`, false}, {`"nope"`, false}} {
		status, body = 200, c.body
		err := api.Healthy(ctx(t))
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrUnexpectedAnswer)) {
			t.Errorf("healthcheck answering %q: %v", c.body, err)
		}
	}
	for _, bad := range []string{"ftp://h", "h:8888", "ws://"} {
		if _, err := NewHostAPI(bad, nil); err == nil {
			t.Errorf("NewHostAPI(%q) accepted", bad)
		}
	}
}

func TestRuleLogValueHasNoToken(t *testing.T) {
	v := Rule{ID: "a", Stream: "a", Destination: "https://h/session/a-log?x=1", Token: "tok.secret.sig"}.LogValue().String()
	if strings.Contains(v, "secret") || strings.Contains(v, "x=1") || !strings.Contains(v, "https://h/session/a-log") {
		t.Fatalf("LogValue %s", v)
	}
}
