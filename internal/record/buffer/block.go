package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/practable/lablog/internal/record/frame"
)

// A block holds consecutive records of one stream and hour, as one commit
// (or a later merge of several) wrote them. Its key is hour|first seq; the
// records' seqs follow on without gaps. Value:
//
//	version(1) codec(1) count(4) payload-length(4) payload crc32c(4)
//
// The CRC-32C covers the key and everything before it, so a flipped bit in
// a key, a header or the (compressed) payload is caught before decoding.
// The payload (zstd-compressed when that helps) is the first record's
// receive time (8) and then, per record: kind(1) flags(1) receive-time
// delta (zigzag varint, ns) data-length (uvarint) data crc32c(data)(4). The
// per-record CRC is computed when the frame is received (Writer.Enqueue), so
// damage anywhere between the socket and the archive is caught.
const (
	blockVersion = 2
	codecRaw     = 0
	codecZstd    = 1
	blockHeader  = 10
	blockTrailer = 4
	keyLen       = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sum is the checksum of a record's data, as stored in the buffer.
func Sum(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// ErrDamaged marks a block or record whose checksum does not match.
var ErrDamaged = errors.New("damaged (checksum mismatch)")

var (
	zenc, _ = zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1<<20),
		zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderCRC(false), // the block has its own CRC
	)
	// zfast compresses the blocks of a full batch, taken from a deep queue
	// while the writer is behind: on realistic 160 KB blocks it takes about
	// two thirds of zenc's time for 3% more bytes, and the CPU is what
	// bounds the writer then. Its state is made at its first use.
	zfast, _ = zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithWindowSize(1<<20),
		zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderCRC(false),
	)
	zdec, _ = zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(maxBlockRaw+(64<<10)),
	)
)

func blockKey(hour time.Time, first uint64) []byte {
	k := make([]byte, keyLen)
	binary.BigEndian.PutUint64(k, uint64(hour.Unix()))
	binary.BigEndian.PutUint64(k[8:], first)
	return k
}

func splitKey(k []byte) (hour time.Time, first uint64) {
	return time.Unix(int64(binary.BigEndian.Uint64(k)), 0).UTC(), binary.BigEndian.Uint64(k[8:])
}

// encodeBlock makes a block value of recs under key, compressed by z
// when it is not nil and that helps. recs must all carry their Sum.
func encodeBlock(key []byte, recs []frame.Record, z *zstd.Encoder) []byte {
	raw := make([]byte, 8, 8+rawSize(recs))
	binary.BigEndian.PutUint64(raw, uint64(recs[0].Received.UnixNano()))
	prev := recs[0].Received.UnixNano()
	for _, r := range recs {
		var flags byte
		if r.ClockSynced {
			flags |= flagClockSynced
		}
		raw = append(raw, byte(r.Kind), flags)
		ns := r.Received.UnixNano()
		raw = binary.AppendVarint(raw, ns-prev)
		prev = ns
		raw = binary.AppendUvarint(raw, uint64(len(r.Data)))
		raw = append(raw, r.Data...)
		raw = binary.BigEndian.AppendUint32(raw, r.Sum)
	}
	codec, payload := byte(codecRaw), raw
	if z != nil && len(raw) > 64 {
		if c := z.EncodeAll(raw, make([]byte, 0, len(raw)/2)); len(c) < len(raw) {
			codec, payload = codecZstd, c
		}
	}
	v := make([]byte, blockHeader, blockHeader+len(payload)+blockTrailer)
	v[0], v[1] = blockVersion, codec
	binary.BigEndian.PutUint32(v[2:], uint32(len(recs)))
	binary.BigEndian.PutUint32(v[6:], uint32(len(raw)))
	v = append(v, payload...)
	return binary.BigEndian.AppendUint32(v, blockSum(key, v))
}

const flagClockSynced = 1

// rawSize is an upper bound of recs' payload before compression.
func rawSize(recs []frame.Record) int {
	n := 8
	for _, r := range recs {
		n += 2 + binary.MaxVarintLen64*2 + len(r.Data) + 4
	}
	return n
}

func blockSum(key, body []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, body)
}

// checkedCount is the record count of a block whose checksum holds, without
// decoding it; ok is false for a damaged block.
func checkedCount(key, v []byte) (n int64, ok bool) {
	if len(key) != keyLen || len(v) < blockHeader+blockTrailer || v[0] != blockVersion {
		return 0, false
	}
	body := v[:len(v)-blockTrailer]
	if blockSum(key, body) != binary.BigEndian.Uint32(v[len(v)-blockTrailer:]) {
		return 0, false
	}
	n = blockCount(v)
	return n, n > 0
}

// blockCount is the record count a block's header claims, for accounting;
// trust it only after its checksum held.
func blockCount(v []byte) int64 {
	if len(v) < blockHeader+blockTrailer {
		return 0
	}
	return int64(binary.BigEndian.Uint32(v[2:]))
}

// decodeBlock checks and decodes a block; every error wraps ErrDamaged.
// The records do not alias v.
func decodeBlock(stream string, key, v []byte) ([]frame.Record, error) {
	damaged := func(format string, a ...any) error {
		return fmt.Errorf("block %x: %s: %w", key, fmt.Sprintf(format, a...), ErrDamaged)
	}
	if len(key) != keyLen || len(v) < blockHeader+blockTrailer {
		return nil, damaged("too short")
	}
	body := v[:len(v)-blockTrailer]
	if blockSum(key, body) != binary.BigEndian.Uint32(v[len(v)-blockTrailer:]) {
		return nil, damaged("block checksum")
	}
	if v[0] != blockVersion {
		return nil, damaged("unknown version %d", v[0])
	}
	count := int(binary.BigEndian.Uint32(v[2:]))
	rawLen := int(binary.BigEndian.Uint32(v[6:]))
	payload := body[blockHeader:]
	var raw []byte
	switch v[1] {
	case codecRaw:
		raw = append([]byte(nil), payload...)
	case codecZstd:
		if rawLen > maxBlockRaw+(64<<10) {
			return nil, damaged("payload of %d bytes", rawLen)
		}
		var err error
		if raw, err = zdec.DecodeAll(payload, make([]byte, 0, rawLen)); err != nil {
			return nil, damaged("decompress: %v", err)
		}
	default:
		return nil, damaged("unknown codec %d", v[1])
	}
	if len(raw) != rawLen || len(raw) < 8 || count < 1 {
		return nil, damaged("payload length")
	}
	recs := make([]frame.Record, 0, count)
	ns := int64(binary.BigEndian.Uint64(raw))
	p := raw[8:]
	for i := range count {
		if len(p) < 2 {
			return nil, damaged("record %d truncated", i)
		}
		kind, flags := frame.Kind(p[0]), p[1]
		p = p[2:]
		delta, n := binary.Varint(p)
		if n <= 0 {
			return nil, damaged("record %d time", i)
		}
		p = p[n:]
		size, n := binary.Uvarint(p)
		if n <= 0 || size > uint64(len(p)-n) || uint64(len(p)-n)-size < 4 {
			return nil, damaged("record %d length", i)
		}
		p = p[n:]
		data := p[:size:size]
		sum := binary.BigEndian.Uint32(p[size:])
		p = p[size+4:]
		if Sum(data) != sum {
			return nil, damaged("record %d checksum", i)
		}
		ns += delta
		recs = append(recs, frame.Record{
			Stream:      stream,
			Received:    time.Unix(0, ns).UTC(),
			ClockSynced: flags&flagClockSynced != 0,
			Kind:        kind,
			Data:        data,
			Sum:         sum,
		})
	}
	if len(p) != 0 {
		return nil, damaged("%d trailing bytes", len(p))
	}
	return recs, nil
}
