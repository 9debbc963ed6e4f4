package buffer

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/platform/logkey"
)

// ReleaseInterval is how often the recorder takes the writer's pages out
// of the resident set (ReleaseMappedEvery).
const ReleaseInterval = 5 * time.Second

// ReleaseMapped drops the buffer's mapped pages from this process's
// resident set (releaseMap) from a read transaction. Scans, settles and the
// side files drop theirs as they go; the writer's transactions do not (a
// madvise per commit would sit on the recording's path), so without this
// every page the writer reads back (its tails, the buckets' branches and
// leaves, each written to a new place by every commit) stays resident, and
// the RSS grows by the pages the writer has moved through.
func (d *DB) ReleaseMapped() error {
	err := d.bolt.View(func(tx *bolt.Tx) error {
		releaseMap(tx)
		return nil
	})
	if err != nil {
		return fmt.Errorf("buffer %s: release mapped pages: %w", d.path, err)
	}
	return nil
}

// ReleaseMappedEvery calls ReleaseMapped every interval until ctx ends. A
// failure is logged once per run of failures and never stops the recording.
func (d *DB) ReleaseMappedEvery(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	failed := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := d.ReleaseMapped()
		if err != nil && !failed {
			d.log.Warn("buffer: cannot release mapped pages: the RSS will include them", logkey.Err, err)
		}
		failed = err != nil
	}
}
