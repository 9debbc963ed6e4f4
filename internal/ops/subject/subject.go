// Package subject finds and erases one data subject's (student's) records:
// in buffer records about to be archived, in archive files, and (through
// the caller) in the bucket's copies of them. It does no network I/O.
//
// A user is matched by the archive's indexed user column, exactly: for a
// websocket message its "user" field, for an /addLog statement the call's
// username query parameter, else the statement's actor.id (see
// archive.Rows). Text inside payloads, raw bytes that do not parse, and
// event details are not searched.
//
// Erasing rows from a joined frame ({...}{...} from one websocket frame)
// keeps the other messages of the frame, as a frame of their exact bytes
// concatenated: their part numbers close up, their bytes do not change.
package subject

import (
	"bytes"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// Matcher says whether a user id is one to drop.
type Matcher func(user string) bool

// One matches the user id given, exactly.
func One(user string) Matcher { return func(u string) bool { return u == user } }

// Filter returns rec without the messages of users m matches: keep is
// false when nothing of it remains, dropped counts the rows removed. A
// record with none of those users is returned as it is.
func Filter(seq uint64, rec frame.Record, m Matcher) (out frame.Record, keep bool, dropped int) {
	if rec.Kind != frame.Text && rec.Kind != frame.Statement {
		return rec, true, 0 // binary frames and events carry no user
	}
	rows := archive.Rows(archive.Entry{Seq: seq, Rec: rec})
	var kept [][]byte
	for i := range rows {
		if rows[i].User != nil && m(*rows[i].User) {
			dropped++
			continue
		}
		kept = append(kept, rows[i].FrameBytes())
	}
	switch {
	case dropped == 0:
		return rec, true, 0
	case len(kept) == 0:
		return frame.Record{}, false, dropped
	}
	rec.Data = bytes.Join(kept, nil)
	rec.Sum = 0 // the data changed; its receive-time CRC no longer applies
	return rec, true, dropped
}
