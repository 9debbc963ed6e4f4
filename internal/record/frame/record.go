// Package frame holds what lablog records: frames and connection events of a
// stream, and how a frame is split into the JSON messages glued inside it.
// It does no I/O.
package frame

import (
	"fmt"
	"time"
)

// Kind says what a Record holds.
type Kind uint8

const (
	// Text is a text websocket frame; Data holds its exact bytes.
	Text Kind = 1
	// Binary is a binary websocket frame; Data holds its exact bytes.
	Binary Kind = 2
	// Connected marks a (re)connection; Data holds the URL dialled (no secrets).
	Connected Kind = 3
	// Disconnected marks a lost connection; Data holds the reason.
	Disconnected Kind = 4
	// Oversize marks a frame longer than the read limit; Data holds the detail.
	Oversize Kind = 5
	// Overflow marks frames dropped because the writer queue was full; Data
	// holds the count, so a gap is always visible in the data.
	Overflow Kind = 6
	// Statement is one HTTP /addLog call; Data is its envelope
	// (StatementData): the call's query, then the body's exact bytes.
	Statement Kind = 7
)

var kindNames = map[Kind]string{
	Text:         "text",
	Binary:       "binary",
	Connected:    "connected",
	Disconnected: "disconnected",
	Oversize:     "oversize",
	Overflow:     "overflow",
	Statement:    "statement",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// IsEvent reports whether the record describes the connection rather than
// carrying a frame from the lab.
func (k Kind) IsEvent() bool { return k != Text && k != Binary && k != Statement }

// Record is one entry of a stream as received, before it is committed.
type Record struct {
	Stream      string
	Received    time.Time // wall clock when the frame arrived
	ClockSynced bool      // whether the wall clock was NTP-synced then
	Kind        Kind
	Data        []byte
	// Committed, when set, is told once whether the record was committed
	// (nil) or refused (an error), so a caller can acknowledge only what
	// is durable. It must have room for that one value.
	Committed chan<- error
	// Sum is the CRC-32C of Data, taken when the frame was received and
	// checked again before the record is archived; 0 until then.
	Sum uint32
}

// Hour is the UTC hour a record received at t belongs to: the unit of the
// buffer's key ranges and of the archive's files.
func Hour(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
