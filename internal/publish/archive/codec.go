package archive

import (
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// zstdCodec is parquet-go's zstd codec with a small window. parquet-go's
// own parquet.Zstd keeps the library's default 8 MiB window, and each pooled
// encoder then holds a 16 MiB history buffer (32 MB live seen while writing
// an hour), although every page is compressed on its own and is only about
// 256 KiB (parquet-go's page size). A window of that size compresses such
// pages the same, in far less memory (the history buffer is about twice
// the window).
//
// The level is zstd's "better" (about level 7), not the default (3): on
// lab traffic the raw and payload columns, nine tenths of a file, come out
// about 12% smaller. docs/performance-compaction.md has the figures, what
// it costs, and why larger pages (smaller still) were not taken.
type zstdCodec struct {
	enc sync.Pool // *zstd.Encoder, dropped by the GC when idle
	dec sync.Pool // *zstd.Decoder
}

var smallZstd = new(zstdCodec)

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	e, _ := c.enc.Get().(*zstd.Encoder)
	if e == nil {
		var err error
		e, err = zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(256<<10),
			zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
			zstd.WithLowerEncoderMem(true),
			zstd.WithZeroFrames(true),
			zstd.WithEncoderCRC(false), // pages carry their own CRC
		)
		if err != nil {
			return dst, err
		}
	}
	defer c.enc.Put(e)
	return e.EncodeAll(src, dst[:0]), nil
}

func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	d, _ := c.dec.Get().(*zstd.Decoder)
	if d == nil {
		var err error
		if d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true)); err != nil {
			return dst, err
		}
	}
	defer c.dec.Put(d)
	return d.DecodeAll(src, dst[:0])
}
