package bench

import "encoding/binary"

// WebSocket opcodes the bench server writes (RFC 6455, section 5.2).
const (
	opText = 0x1
	opPong = 0xA
)

// appendFrame appends one unmasked, final server-to-client frame. The bench
// encodes frames itself so that flat-out load can hand the kernel many
// frames in one write: the load generator must cost far less than lablog.
func appendFrame(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}
