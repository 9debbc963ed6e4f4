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
//
// Each Writer has its own codec, and the codec keeps its encoders for the
// writer's life in a plain free list, not a sync.Pool: a pool is emptied
// by every other GC, and under compaction's soft memory limit the GC runs
// often, so each page would build a new encoder (about 4 MiB of tables,
// allocated and cleared) and the peak would depend on how many happened
// to be alive at once. The encoders go with the writer, so an idle daemon
// holds none.
type zstdCodec struct {
	mu   sync.Mutex
	encs []*zstd.Encoder // idle encoders, at most one per concurrent page
	dec  sync.Pool       // *zstd.Decoder
}

func newZstdCodec() *zstdCodec { return new(zstdCodec) }

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return pageCodec }

// pageCodec is the codec of every page lablog writes; readers also take
// uncompressed pages (tools and tests write them), and a file that names
// any other codec is damaged (see metaOf).
const pageCodec = format.Zstd

func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	c.mu.Lock()
	var e *zstd.Encoder
	if n := len(c.encs); n > 0 {
		e, c.encs = c.encs[n-1], c.encs[:n-1]
	}
	c.mu.Unlock()
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
	dst = e.EncodeAll(src, dst[:0])
	c.mu.Lock()
	c.encs = append(c.encs, e)
	c.mu.Unlock()
	return dst, nil
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
