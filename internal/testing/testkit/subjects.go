package testkit

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// SubjectUser is the name of user i of SubjectRecords.
func SubjectUser(i int) string { return fmt.Sprintf("u-%03d", i) }

// SubjectRecords makes n records of stream, received from hour on, by
// users SubjectUser(0..users-1), of every shape a user appears in: single
// websocket messages, joined frames of two or three users ({..}{..}),
// /addLog statements naming the user by username and by actor.id only,
// plus connection events and messages with no user. counts is added each
// user's rows (as the archive indexes them: archive.Rows).
func SubjectRecords(rng *rand.Rand, stream string, hour time.Time, n, users int, counts map[string]int) []frame.Record {
	msg := func(u string, i int) string {
		return fmt.Sprintf(`{"user":%q,"t":%d,"exp":%q,"type":"log","payload":{"i":%d,"x":%f}}`, u, hour.UnixMilli()+int64(i), stream, i, rng.Float64())
	}
	user := func() string { return SubjectUser(rng.IntN(users)) }
	recs := make([]frame.Record, 0, n)
	for i := range n {
		r := frame.Record{Stream: stream, Received: hour.Add(time.Duration(i) * time.Second), ClockSynced: true, Kind: frame.Text}
		switch k := rng.IntN(20); {
		case k < 10:
			r.Data = []byte(msg(user(), i))
		case k < 12:
			r.Data = []byte(msg(user(), i) + msg(user(), i))
		case k < 14:
			r.Data = []byte(msg(user(), i) + msg(user(), i) + msg(user(), i))
		case k < 16:
			r.Kind = frame.Statement
			q := url.Values{"username": {user()}, "course": {"ed1"}, "hardware": {"spinner"}}
			r.Data = frame.StatementData(q, fmt.Appendf(nil, `{"timestamp":%d,"actor":{"id":"someone-else"},"verb":{"name":"clicked"},"context":{"exp_id":%q}}`, hour.UnixMilli()+int64(i), stream))
		case k < 18:
			r.Kind = frame.Statement
			r.Data = frame.StatementData(url.Values{}, fmt.Appendf(nil, `{"timestamp":%d,"actor":{"id":%q},"verb":{"name":"clicked"},"object":{"value":"é"}}`, hour.UnixMilli()+int64(i), user()))
		case k < 19:
			r.Data = fmt.Appendf(nil, `{"t":%d,"type":"response","payload":{"score":NaN}}`, i)
		default:
			r.Kind = frame.Connected
			r.Data = []byte("ws://127.0.0.1/ws/" + stream)
		}
		for _, row := range archive.Rows(archive.Entry{Seq: uint64(i + 1), Rec: r}) {
			if row.User != nil {
				counts[*row.User]++
			}
		}
		recs = append(recs, r)
	}
	return recs
}
