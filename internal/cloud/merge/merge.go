// Package merge writes a day of a fleet's hourly objects as a few large
// Parquet files, <prefix>/compacted/date=<YYYY-MM-DD>/part-NNNNN.parquet,
// sorted by site, stream and received time, for fast analysis. The hourly
// objects stay the record: every one is verified (lablog's checksum) before
// its rows are taken, and the merged parts are derived data, replaced by a
// later merge of the same day (parts it does not write again are removed).
//
// Memory stays bounded by one stream's hour: the hours of a stream are
// merged in order, since a file's hour is that of its received times.
package merge

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/practable/lablog/internal/cloud/fleet"
	"github.com/practable/lablog/internal/publish/archive"
)

// Row is an archive row with the partition keys it had in its path, as
// the first columns (parquet-go flattens the embedded struct's columns).
type Row struct {
	Site   string `parquet:"site,dict"`
	Stream string `parquet:"stream,dict"`
	archive.Row
}

func fromArchive(site, stream string, r archive.Row) Row {
	return Row{Site: site, Stream: stream, Row: r}
}

// Options say what to merge and where.
type Options struct {
	Bucket, Prefix string
	Date           time.Time // the UTC day
	PartRows       int64     // rows per part file; default 5,000,000
	RowGroupRows   int64     // default 50,000
	Scratch        string    // folder for downloads and parts; default a temporary one
	Logger         *slog.Logger
}

// Result says what a merge did.
type Result struct {
	Objects int      // hourly objects merged
	Rows    int64    // rows written
	Parts   []string // keys written
	Removed []string // keys of an earlier merge's parts this one did not write again
}

type hourKey struct {
	site, stream string
	hour         time.Time
}

// Day merges opts.Date's hourly objects of every site under opts.Prefix.
func Day(ctx context.Context, client *s3.Client, o Options) (Result, error) {
	var res Result
	if o.PartRows <= 0 {
		o.PartRows = 5_000_000
	}
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = 50_000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	date := o.Date.UTC().Format(time.DateOnly)
	objs, err := fleet.List(ctx, client, o.Bucket, o.Prefix)
	if err != nil {
		return res, err
	}
	groups := map[hourKey][]string{}
	for _, obj := range objs {
		site, n, ok := fleet.ParseKey(o.Prefix, obj.Key)
		if !ok || n.Hour.Format(time.DateOnly) != date {
			continue
		}
		k := hourKey{site, n.Stream, n.Hour}
		groups[k] = append(groups[k], obj.Key)
		res.Objects++
	}
	if len(groups) == 0 {
		return res, fmt.Errorf("merge %s: no hourly objects under s3://%s/%s", date, o.Bucket, o.Prefix)
	}
	keys := make([]hourKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b hourKey) int {
		return cmp.Or(cmp.Compare(a.site, b.site), cmp.Compare(a.stream, b.stream), a.hour.Compare(b.hour))
	})
	scratch := o.Scratch
	if scratch == "" {
		if scratch, err = os.MkdirTemp("", "lablog-merge-"); err != nil {
			return res, err
		}
		defer os.RemoveAll(scratch)
	}
	w := &partWriter{ctx: ctx, client: client, o: o, dir: scratch,
		prefix: path.Join(o.Prefix, "compacted", "date="+date)}
	defer w.abort()
	for _, k := range keys {
		rows, err := readHour(ctx, client, o.Bucket, scratch, k, groups[k])
		if err != nil {
			return res, err
		}
		for _, r := range rows {
			if err := w.add(r); err != nil {
				return res, err
			}
		}
		res.Rows += int64(len(rows))
	}
	if err := w.finish(); err != nil {
		return res, err
	}
	res.Parts = w.keys
	if res.Removed, err = w.removeStale(); err != nil {
		return res, err
	}
	o.Logger.Info("merged", "date", date, "objects", res.Objects, "rows", res.Rows, "parts", len(res.Parts), "removed", len(res.Removed))
	return res, nil
}

// readHour downloads and verifies one stream's hour (one object, or more
// with late frames) and returns its rows sorted by received time.
func readHour(ctx context.Context, client *s3.Client, bucket, dir string, k hourKey, keys []string) ([]Row, error) {
	var rows []Row
	for _, key := range keys {
		local := filepath.Join(dir, path.Base(key))
		if err := download(ctx, client, bucket, key, local); err != nil {
			return nil, err
		}
		if _, err := archive.Verify(local); err != nil {
			os.Remove(local)
			return nil, fmt.Errorf("merge: s3://%s/%s does not verify: %w", bucket, key, err)
		}
		got, _, err := archive.ReadRows(local)
		os.Remove(local)
		if err != nil {
			return nil, fmt.Errorf("merge: %s: %w", key, err)
		}
		for _, r := range got {
			rows = append(rows, fromArchive(k.site, k.stream, r))
		}
	}
	slices.SortStableFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.ReceivedAt, b.ReceivedAt), cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Part, b.Part))
	})
	return rows, nil
}

func download(ctx context.Context, client *s3.Client, bucket, key, local string) error {
	resp, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("merge: get s3://%s/%s: %w", bucket, key, err)
	}
	defer resp.Body.Close()
	f, err := os.Create(local)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("merge: get s3://%s/%s: %w", bucket, key, err)
	}
	return f.Close()
}

// partWriter writes rows into part files of PartRows rows and uploads each
// when it is full.
type partWriter struct {
	ctx    context.Context
	client *s3.Client
	o      Options
	dir    string
	prefix string
	keys   []string

	f    *os.File
	pw   *parquet.GenericWriter[Row]
	rows int64
	buf  [1]Row
}

func (w *partWriter) add(r Row) error {
	if w.pw == nil {
		f, err := os.Create(filepath.Join(w.dir, fmt.Sprintf("part-%05d.parquet", len(w.keys))))
		if err != nil {
			return err
		}
		w.f, w.rows = f, 0
		w.pw = parquet.NewGenericWriter[Row](f, parquet.Compression(&zstd.Codec{}), parquet.MaxRowsPerRowGroup(w.o.RowGroupRows))
	}
	w.buf[0] = r
	if _, err := w.pw.Write(w.buf[:]); err != nil {
		return fmt.Errorf("merge: write part: %w", err)
	}
	if w.rows++; w.rows >= w.o.PartRows {
		return w.flush()
	}
	return nil
}

// flush closes the current part and uploads it (replacing an earlier
// merge's part of the same name).
func (w *partWriter) flush() error {
	if w.pw == nil {
		return nil
	}
	err := w.pw.Close()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	local := w.f.Name()
	w.pw, w.f = nil, nil
	if err != nil {
		return fmt.Errorf("merge: write part: %w", err)
	}
	defer os.Remove(local)
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	key := path.Join(w.prefix, filepath.Base(local))
	if _, err := w.client.PutObject(w.ctx, &s3.PutObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key), Body: f,
		ContentType: aws.String("application/vnd.apache.parquet")}); err != nil {
		return fmt.Errorf("merge: put s3://%s/%s: %w", w.o.Bucket, key, err)
	}
	w.keys = append(w.keys, key)
	return nil
}

func (w *partWriter) finish() error { return w.flush() }

// removeStale deletes the parts of an earlier merge of the day that this
// one did not write again (it wrote fewer): a reader of the day's folder
// would count their rows twice. Only once every new part is in place.
func (w *partWriter) removeStale() ([]string, error) {
	var removed []string
	pages := s3.NewListObjectsV2Paginator(w.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(w.o.Bucket), Prefix: aws.String(w.prefix + "/part-")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(w.ctx)
		if err != nil {
			return removed, fmt.Errorf("merge: list s3://%s/%s: %w", w.o.Bucket, w.prefix, err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			if slices.Contains(w.keys, key) || path.Ext(key) != ".parquet" {
				continue
			}
			if _, err := w.client.DeleteObject(w.ctx, &s3.DeleteObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key)}); err != nil {
				return removed, fmt.Errorf("merge: remove the earlier s3://%s/%s: %w", w.o.Bucket, key, err)
			}
			removed = append(removed, key)
		}
	}
	return removed, nil
}

func (w *partWriter) abort() {
	if w.pw != nil {
		w.pw.Close()
		w.f.Close()
		os.Remove(w.f.Name())
		w.pw = nil
	}
}
