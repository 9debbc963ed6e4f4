package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/practable/lablog/internal/platform/logkey"
)

// Rule is a relay host's destination rule: the host keeps one upstream
// connection per rule, to Destination (an access URL) with Token, and
// passes what it receives to the local clients of ws://host/ws/{Stream}.
type Rule struct {
	ID          string `json:"id"`
	Stream      string `json:"stream"`
	Destination string `json:"destination"`
	Token       string `json:"token"`
	File        string `json:"file"`
}

// LogValue keeps the token out of logs.
func (r Rule) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", r.ID), slog.String(logkey.Stream, r.Stream),
		slog.String("destination", redact(r.Destination)))
}

// HostAPI is a client of a relay host's local API (docs/relay.md).
// The host answers GET /api/destinations/all with every rule, full tokens
// included, and without authentication, so it must only listen where the
// network cannot reach it.
type HostAPI struct {
	base   string // http://host:port
	client *http.Client
}

// NewHostAPI makes a client for the host at base (http, https, ws or wss;
// ws maps to http). client nil means one with a 10 s timeout.
func NewHostAPI(base string, client *http.Client) (*HostAPI, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("relay host %q: not a URL with a host", base)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("relay host %q: scheme must be http, https, ws or wss", base)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &HostAPI{base: u.Scheme + "://" + u.Host, client: client}, nil
}

// Base is the API's base URL.
func (h *HostAPI) Base() string { return h.base }

// ErrUnexpectedAnswer: the host answered, but not as a relay host does.
var ErrUnexpectedAnswer = errors.New("unexpected answer")

// Healthy asks GET /healthcheck. The relay host answers the JSON string
// "ok" (quotes and a newline included); a bare ok is taken too.
func (h *HostAPI) Healthy(ctx context.Context) error {
	body, err := h.do(ctx, http.MethodGet, "/healthcheck", nil)
	if err != nil {
		return err
	}
	switch strings.TrimSpace(string(body)) {
	case `"ok"`, "ok":
		return nil
	}
	return fmt.Errorf("relay host %s: healthcheck answered %q, want \"ok\": %w", h.base, snippet(body, ""), ErrUnexpectedAnswer)
}

// Put adds r, or replaces the rule with r's ID.
func (h *HostAPI) Put(ctx context.Context, r Rule) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("relay host: encode rule %s: %w", r.ID, err)
	}
	_, err = h.do(ctx, http.MethodPost, "/api/destinations", data)
	return err
}

// All returns every rule by ID.
func (h *HostAPI) All(ctx context.Context) (map[string]Rule, error) {
	body, err := h.do(ctx, http.MethodGet, "/api/destinations/all", nil)
	if err != nil {
		return nil, err
	}
	rules := map[string]Rule{}
	if err := json.Unmarshal(body, &rules); err != nil {
		// Not quoted: the body holds tokens.
		return nil, fmt.Errorf("relay host %s: /api/destinations/all is not a map of rules: %w", h.base, jsonErr(err))
	}
	if rules == nil { // the host answered null
		rules = map[string]Rule{}
	}
	return rules, nil
}

// Get returns the rule id and whether it exists; the host answers an
// unknown id with an empty rule, not a 404.
func (h *HostAPI) Get(ctx context.Context, id string) (Rule, bool, error) {
	if err := checkID(id); err != nil {
		return Rule{}, false, err
	}
	body, err := h.do(ctx, http.MethodGet, "/api/destinations/"+id, nil)
	if err != nil {
		return Rule{}, false, err
	}
	var r Rule
	if err := json.Unmarshal(body, &r); err != nil {
		return Rule{}, false, fmt.Errorf("relay host %s: rule %s: %w", h.base, id, jsonErr(err))
	}
	return r, r != (Rule{}), nil
}

// Delete removes the rule id. There is no "delete all": on the host,
// DELETE /api/destinations/all only deletes a rule named "all".
func (h *HostAPI) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	_, err := h.do(ctx, http.MethodDelete, "/api/destinations/"+id, nil)
	return err
}

func checkID(id string) error {
	if id == "" || id == "all" || !validStream(id) {
		return fmt.Errorf("relay host: rule id %q: want letters, digits, - and /, and not \"all\"", id)
	}
	return nil
}

// validStream is the host's rule for stream names and rule ids.
func validStream(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '/') {
			return false
		}
	}
	return s != ""
}

func (h *HostAPI) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("relay host %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("relay host %s %s%s: %w", method, h.base, path, scrubURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("relay host %s %s%s: read reply: %w", method, h.base, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		// The body is left out: a reply about a rule may echo its token.
		return nil, fmt.Errorf("relay host %s %s%s: HTTP %s", method, h.base, path, resp.Status)
	}
	return data, nil
}

// jsonErr drops the offending value that a json error may quote.
func jsonErr(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q has the wrong type", te.Field)
	}
	return errors.New("invalid JSON")
}
