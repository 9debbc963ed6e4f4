package relaytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// TokenSpec describes a token for Token. Zero times mean: issued now,
// valid for a day.
type TokenSpec struct {
	Topic     string
	Scopes    []string
	BookingID string
	Audience  string // the relay's URL()
	Prefix    string // default "session"
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Token mints a token as the relay's own tools do (HS256), for UIs and
// tests. It panics on a signing error, which needs a broken secret.
func Token(secret []byte, s TokenSpec) string {
	if s.Prefix == "" {
		s.Prefix = "session"
	}
	if s.IssuedAt.IsZero() {
		s.IssuedAt = time.Now()
	}
	if s.ExpiresAt.IsZero() {
		s.ExpiresAt = s.IssuedAt.Add(24 * time.Hour)
	}
	c := claims{Topic: s.Topic, Prefix: s.Prefix, Scopes: s.Scopes, BookingID: s.BookingID,
		RegisteredClaims: jwt.RegisteredClaims{
			Audience:  jwt.ClaimStrings{s.Audience},
			IssuedAt:  jwt.NewNumericDate(s.IssuedAt),
			NotBefore: jwt.NewNumericDate(s.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(s.ExpiresAt),
		}}
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		panic(fmt.Sprintf("relaytest: sign: %v", err))
	}
	return t
}

// join runs the access protocol its own way (not package relay's) and dials
// the URI it gets.
func join(ctx context.Context, accessURL, token string) (*websocket.Conn, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, accessURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("access: HTTP %d", resp.StatusCode)
	}
	var reply struct{ URI string }
	if err := json.Unmarshal(body, &reply); err != nil {
		return nil, fmt.Errorf("access reply: %w", err)
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, reply.URI, nil)
	return conn, err
}

// UIs are the lab UIs of a Relay's topics: the UI of stream spin30 joins
// topic spin30-log with a write-only token and sends what a labsim.Lab
// makes (UIs is a labsim.Publisher). A frame that cannot be sent (the relay
// is down) is counted in Dropped, and the UI joins again at the next one.
type UIs struct {
	relay   *Relay
	secret  []byte
	mu      sync.Mutex
	uis     map[string]*ui
	dropped atomic.Int64
	sent    atomic.Int64
}

type ui struct {
	mu   sync.Mutex
	conn *websocket.Conn
}

// NewUIs makes the UIs of r's topics; secret signs their tokens.
func NewUIs(r *Relay, secret []byte) *UIs {
	return &UIs{relay: r, secret: secret, uis: map[string]*ui{}}
}

// Connect joins the topics of streams now, so the first frames are not
// dropped for want of a connection.
func (u *UIs) Connect(ctx context.Context, streams ...string) error {
	for _, s := range streams {
		x := u.get(s)
		x.mu.Lock()
		err := u.connect(ctx, x, s)
		x.mu.Unlock()
		if err != nil {
			return fmt.Errorf("relaytest: UI of %s: %w", s, err)
		}
	}
	return nil
}

func (u *UIs) get(stream string) *ui {
	u.mu.Lock()
	defer u.mu.Unlock()
	x := u.uis[stream]
	if x == nil {
		x = &ui{}
		u.uis[stream] = x
	}
	return x
}

// connect joins stream's topic; x.mu must be held.
func (u *UIs) connect(ctx context.Context, x *ui, stream string) error {
	if x.conn != nil {
		return nil
	}
	topic := stream + "-log"
	tok := Token(u.secret, TokenSpec{Topic: topic, Scopes: []string{"write"}, BookingID: "ui-" + stream, Audience: u.relay.URL()})
	conn, err := join(ctx, u.relay.AccessURL(topic), tok)
	if err != nil {
		return err
	}
	x.conn = conn
	go func() { // a write-only client reads nothing but control frames
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				x.mu.Lock()
				if x.conn == conn { // gone: join again at the next frame
					x.conn = nil
				}
				x.mu.Unlock()
				conn.Close()
				return
			}
		}
	}()
	return nil
}

// Publish sends frame on stream's topic, joining it first if need be.
func (u *UIs) Publish(stream string, frame []byte, binary bool) {
	x := u.get(stream)
	x.mu.Lock()
	defer x.mu.Unlock()
	typ := websocket.TextMessage
	if binary {
		typ = websocket.BinaryMessage
	}
	for attempt := 0; attempt < 2; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := u.connect(ctx, x, stream)
		cancel()
		if err != nil {
			break
		}
		if err := x.conn.WriteMessage(typ, frame); err == nil {
			u.sent.Add(1)
			return
		}
		x.conn.Close()
		x.conn = nil
	}
	u.dropped.Add(1)
}

// Connected reports whether stream's UI is joined.
func (u *UIs) Connected(stream string) bool {
	x := u.get(stream)
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.conn != nil
}

// Dropped is the number of frames that could not be sent.
func (u *UIs) Dropped() int64 { return u.dropped.Load() }

// Sent is the number of frames sent.
func (u *UIs) Sent() int64 { return u.sent.Load() }

// Close closes every UI's connection.
func (u *UIs) Close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.uis {
		x.mu.Lock()
		if x.conn != nil {
			x.conn.Close()
			x.conn = nil
		}
		x.mu.Unlock()
	}
}
