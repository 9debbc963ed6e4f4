package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// CodeLife is how long the relay keeps the single-use code of an access
// URI: the URI must be dialled within it.
const CodeLife = 30 * time.Second

// Errors of the access protocol. An *AccessError wraps one of them.
var (
	// ErrDenied: the relay refused the token (HTTP 400, 401 or 403).
	ErrDenied = errors.New("relay refused the token")
	// ErrWrongTopic: the token is for another topic than the access URL's.
	ErrWrongTopic = errors.New("token is for another topic")
	// ErrTokenExpired: the token's exp has passed.
	ErrTokenExpired = errors.New("token expired")
)

// AccessError is a refusal or failure of the access endpoint.
type AccessError struct {
	Status int    // HTTP status; 0 when the reply was unusable
	Msg    string // the relay's own words, shortened, with any token removed
	kind   error  // ErrDenied, ErrWrongTopic, ErrTokenExpired or nil
}

func (e *AccessError) Error() string {
	s := "relay access"
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.kind != nil {
		s += ": " + e.kind.Error()
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap lets errors.Is match ErrDenied and, more precisely, ErrWrongTopic
// or ErrTokenExpired.
func (e *AccessError) Unwrap() []error {
	switch e.kind {
	case nil:
		return nil
	case ErrDenied:
		return []error{ErrDenied}
	}
	return []error{e.kind, ErrDenied}
}

// Access runs the relay's access protocol: POST accessURL with the token,
// raw, in the Authorization header (a "Bearer " prefix makes the relay
// answer 500), and return the websocket URI it grants. The URI carries a
// single-use code that expires after CodeLife. client nil means a client
// with a 15 s timeout.
func Access(ctx context.Context, client *http.Client, accessURL, token string) (string, error) {
	if client == nil {
		client = defaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, accessURL, nil)
	if err != nil {
		return "", fmt.Errorf("relay access %s: %w", redact(accessURL), err)
	}
	req.Header.Set("Authorization", strings.TrimSpace(token))
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("relay access %s: %w", redact(accessURL), scrubURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("relay access %s: read reply: %w", redact(accessURL), err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", refusal(resp.StatusCode, body, token)
	}
	var reply struct {
		URI string `json:"uri"`
	}
	if err := json.Unmarshal(body, &reply); err != nil || reply.URI == "" {
		return "", &AccessError{Msg: "reply has no uri: " + snippet(body, token)}
	}
	u, err := url.Parse(reply.URI)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return "", &AccessError{Msg: "reply uri is not a ws or wss URL: " + redact(reply.URI)}
	}
	return reply.URI, nil
}

var defaultClient = &http.Client{Timeout: 15 * time.Second}

// refusal classifies a non-200 answer. The relay says "Token Wrong Topic"
// in the body of its 401; an expired token only shows as a 401, so the
// token's own exp tells that case apart.
func refusal(status int, body []byte, token string) error {
	e := &AccessError{Status: status, Msg: snippet(body, token)}
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		e.kind = ErrDenied
		if strings.Contains(strings.ToLower(string(body)), "wrong topic") {
			e.kind = ErrWrongTopic
		} else if c, err := ParseUnverified(token); err == nil && c.Expired(time.Now()) {
			e.kind = ErrTokenExpired
		}
	}
	return e
}

// snippet makes a reply body fit for a log line: one line, short, with the
// token cut out should a server ever echo it.
func snippet(body []byte, token string) string {
	s := string(body)
	if t := strings.TrimSpace(token); t != "" {
		s = strings.ReplaceAll(s, t, "[token]")
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// redact drops what a URL may carry that is secret: the query (codes),
// fragment and user info.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// scrubURLError replaces the URL inside a *url.Error (which would carry a
// query string) with its redacted form.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
