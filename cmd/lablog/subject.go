package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/cloud/fleet"
	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/subject"
	"github.com/practable/lablog/internal/platform/version"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

func cmdSubject(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "export":
			return cmdSubjectExport(ctx, args[1:], stdout, stderr)
		case "erase":
			return cmdSubjectErase(ctx, args[1:], stdout, stderr)
		case "verify-report":
			return cmdSubjectVerifyReport(args[1:], stdout, stderr)
		}
		if isHelp(args[0]) {
			fmt.Fprint(stdout, subjectUsage)
			return nil
		}
	}
	fmt.Fprint(stderr, subjectUsage)
	return errUsage
}

const subjectUsage = `Usage: lablog subject export|erase|verify-report ...

  lablog subject export --user ID --out DIR [--config FILE] [--archive DIR] [--buffer FILE] [--bucket] [--site S]
        every row of user ID (buffer, drive, bucket) as DIR/records.jsonl, and DIR/summary.json
  lablog subject erase --user ID [--config FILE] [--bucket]
        remove every row of user ID from the buffer, the archive and this site's objects in
        the bucket; write a signed report; tombstone the user (the daemon must be stopped)
  lablog subject verify-report [--key FILE] REPORT
        check a report's signature

A user is matched by the user column: a websocket message's "user", an /addLog
statement's username parameter, else its actor.id. With privacy.pseudonymise on,
ID is the student's own id: the configuration's key gives the pseudonym to
match. See docs/data-rights.md.
`

// set reports whether the flag name was given.
func set(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func cmdSubjectExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("subject export", "--user ID --out DIR [--config FILE] [--archive DIR] [--buffer FILE] [--bucket] [--site S]",
		"Write every row of one user found in the buffer, the archive and (with --bucket) the\n"+
			"bucket to DIR/records.jsonl, one JSON object a row, and counts per stream and day with\n"+
			"the first and last time to DIR/summary.json (also printed). Objects of this site that\n"+
			"the drive holds too are read on the drive only. The buffer can be read only while the\n"+
			"daemon is stopped; --buffer '' leaves it out.")
	user := fs.String("user", "", "the user `id` (exact match of the user column)")
	out := fs.String("out", "", "`dir`ectory for records.jsonl and summary.json (made if missing)")
	cfgPath := fs.String("config", defaultConfig, "configuration `file` (archive, buffer, upload section)")
	root := fs.String("archive", "", "archive `dir` (default: the configuration's)")
	buf := fs.String("buffer", "", "buffer `file` (default: the configuration's; '' with --archive: none)")
	bucket := fs.Bool("bucket", false, "also read the objects in the configuration's bucket (every site)")
	site := fs.String("site", "", "with --bucket, only this `site`'s objects")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 0:
		return usageError(fs, stderr, "takes no arguments")
	case *user == "":
		return usageError(fs, stderr, "--user is required")
	case *out == "":
		return usageError(fs, stderr, "--out is required")
	}
	var cfg config.Config
	useConfig := set(fs, "config") || *bucket || !set(fs, "archive") && !set(fs, "buffer")
	if useConfig {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
		if !set(fs, "archive") {
			*root = cfg.Archive.Path
		}
		if !set(fs, "buffer") {
			*buf = cfg.Buffer.Path
		}
		if *user, err = storedID(cfg, *user); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(*out, "records.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	x := subject.NewExporter(f, *user)
	if *buf != "" {
		if err := exportBuffer(x, *buf); err != nil {
			return err
		}
	}
	if *root != "" {
		files, err := archive.Files(*root)
		if err != nil {
			return err
		}
		for _, af := range files {
			rel, _ := filepath.Rel(*root, af.Path)
			if err := x.File("drive", af.Path, filepath.ToSlash(rel)); err != nil {
				return err
			}
		}
	}
	if *bucket {
		if err := exportBucket(ctx, x, cfg, *root, *site, *out); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	sum, err := json.MarshalIndent(x.Summary(), "", "  ")
	if err != nil {
		return err
	}
	sum = append(sum, '\n')
	if err := os.WriteFile(filepath.Join(*out, "summary.json"), sum, 0o600); err != nil {
		return err
	}
	_, err = stdout.Write(sum)
	return err
}

func exportBuffer(x *subject.Exporter, path string) error {
	db, err := buffer.OpenReadOnly(path, buffer.Options{})
	if errors.Is(err, buffer.ErrLocked) {
		return fmt.Errorf("%w\nstop the daemon to export the buffer too (systemctl stop lablog), or leave it out: --buffer ''", err)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	damaged, err := db.ScanGroups(nil, func(g buffer.Group, seq uint64, r frame.Record) error {
		return x.Record(seq, g.BufferID, r)
	})
	if err == nil && damaged > 0 {
		err = fmt.Errorf("buffer %s: %d damaged blocks could not be read: run lablog compact to set them aside, then export again", path, damaged)
	}
	return err
}

// exportBucket reads every object of the bucket (of site, when given) that
// the drive does not hold under the same name.
func exportBucket(ctx context.Context, x *subject.Exporter, cfg config.Config, root, site, tmpParent string) error {
	b, err := newSubjectBucket(cfg)
	if err != nil {
		return err
	}
	objs, err := fleet.List(ctx, b.client, cfg.Upload.Bucket, cfg.Upload.Prefix)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(tmpParent, ".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, o := range objs {
		s, _, ok := fleet.ParseKey(cfg.Upload.Prefix, o.Key)
		if !ok || site != "" && s != site {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(o.Key, cfg.Upload.Prefix+"/"), "site="+s+"/")
		if s == cfg.Upload.Site && root != "" {
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); err == nil {
				continue // read on the drive
			}
		}
		dst := filepath.Join(tmp, "object.parquet")
		if err := b.getKey(ctx, o.Key, dst); err != nil {
			return err
		}
		if err := x.File("bucket", dst, o.Key); err != nil {
			return err
		}
	}
	return nil
}

func cmdSubjectErase(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("subject erase", "--user ID [--config FILE] [--bucket]",
		"Remove every row of one user: the buffer's records are archived now without them (open\n"+
			"hours too), every archive file holding one is rewritten without them as a new file\n"+
			"(next revision) and the old one removed; with --bucket, this site's objects likewise\n"+
			"(new object uploaded and recorded, old deleted; objects the drive no longer holds\n"+
			"are downloaded and rewritten). The user goes on the tombstone list, so later\n"+
			"compactions drop them too; the live analytics state is dropped, to be counted again.\n"+
			"A signed report is written to erasure-reports/ beside the buffer. The daemon must be\n"+
			"stopped (it holds the buffer). Interrupted, run the same command again: it finishes.")
	user := fs.String("user", "", "the user `id` (exact match of the user column)")
	cfgPath := fs.String("config", defaultConfig, "configuration `file`")
	bucket := fs.Bool("bucket", false, "also erase from this site's objects in the configuration's bucket")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 0:
		return usageError(fs, stderr, "takes no arguments")
	case *user == "":
		return usageError(fs, stderr, "--user is required")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *user, err = storedID(cfg, *user); err != nil {
		return err
	}
	log := newLogger(stderr, slog.LevelInfo)
	// Held throughout: a daemon started meanwhile must not archive or
	// count anything until the erasure is done.
	db, err := wire.OpenBuffer(cfg, log)
	if errors.Is(err, buffer.ErrLocked) {
		return fmt.Errorf("%w\nstop the daemon first (systemctl stop lablog), erase, then start it again", err)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	faults := wire.OpenFaults(cfg, log)
	defer faults.Flush()
	opts := subject.Options{
		DataDir:      filepath.Dir(cfg.Buffer.Path),
		Archive:      cfg.Archive.Path,
		Require:      string(cfg.Archive.Require),
		RowGroupRows: cfg.Archive.RowGroupRows,
		Version:      version.Version,
		Logger:       log,
		Buffer: func(ctx context.Context, m subject.Matcher) (int64, error) {
			copts := wire.Compactor(cfg, log, faults)
			copts.OpenHours = true
			// Every tombstoned user, not only this one: the list is the
			// daemon's filter, and an earlier erasure's user may have
			// come back since.
			ts, err := subject.LoadTombstones(subject.TombstonePath(cfg.Buffer.Path))
			if err != nil {
				return 0, err
			}
			tm := ts.Matcher()
			var dropped int64
			copts.Filter = func(seq uint64, r frame.Record) (frame.Record, bool) {
				out, keep, n := subject.Filter(seq, r, func(u string) bool { return m(u) || tm != nil && tm(u) })
				dropped += int64(n)
				return out, keep
			}
			res := compactor.New(db, copts).RunOnce(ctx)
			if res.Err != nil {
				return 0, res.Err
			}
			if res.SetAside > 0 {
				log.Warn("damaged buffer records were set aside, not searched", "records", res.SetAside, "dir", db.DamagedDir())
			}
			return dropped, nil
		},
		DropAnalytics: func() error { return analytics.DropState(cfg.Buffer.Path) },
	}
	if *bucket {
		if !cfg.Upload.Enabled() {
			return fmt.Errorf("subject erase --bucket: %s has no upload section (upload.endpoint is empty)", *cfgPath)
		}
		b, err := newSubjectBucket(cfg)
		if err != nil {
			return err
		}
		opts.Bucket = b
	}
	reportPath, rep, err := subject.Erase(ctx, *user, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "erased %d rows of user %s from %d files; buffer rows %d\nreport: %s\nsignature: %s.sig (check: lablog subject verify-report %s)\n",
		rep.Rows, rep.UserSHA256, len(rep.Files), deref(rep.BufferRows), reportPath, reportPath, reportPath)
	return nil
}

func deref(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}

func cmdSubjectVerifyReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("subject verify-report", "[--key FILE] REPORT",
		"Check an erasure report against its REPORT.sig and the public key (by default\n"+
			"subject-report.pub beside the report's folder).")
	key := fs.String("key", "", "public key `file` (PEM)")
	rp, err := parseOne(fs, args, "report", stdout, stderr)
	if err != nil {
		return err
	}
	if *key == "" {
		*key = filepath.Join(filepath.Dir(filepath.Dir(rp)), subject.PubKeyFile)
	}
	r, err := subject.VerifyReport(rp, *key)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signature good: user %s, %d files, %d rows removed, finished %s\n", r.UserSHA256, len(r.Files), r.Rows, r.Finished.Format("2006-01-02T15:04:05Z"))
	return nil
}

// subjectBucket is this site's part of the configured bucket, for an
// erasure; uploads go through the uploader, ledger included.
type subjectBucket struct {
	cfg      config.Config
	client   *s3.Client
	creds    upload.Credentials
	uploader map[string]*upload.Uploader // by local root
}

func newSubjectBucket(cfg config.Config) (*subjectBucket, error) {
	creds, err := upload.LoadCredentials(cfg.Upload.CredentialsFile)
	if err != nil {
		return nil, err
	}
	return &subjectBucket{cfg: cfg, creds: creds, client: upload.NewClient(wire.Upload(cfg), creds),
		uploader: map[string]*upload.Uploader{}}, nil
}

func (b *subjectBucket) String() string { return wire.Upload(b.cfg).Target() }

func (b *subjectBucket) key(rel string) string {
	return path.Join(b.cfg.Upload.Prefix, "site="+b.cfg.Upload.Site, rel)
}

func (b *subjectBucket) List(ctx context.Context) (map[string]bool, error) {
	site := path.Join(b.cfg.Upload.Prefix, "site="+b.cfg.Upload.Site)
	objs, err := fleet.List(ctx, b.client, b.cfg.Upload.Bucket, site)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, o := range objs {
		if rel, ok := strings.CutPrefix(o.Key, site+"/"); ok {
			out[rel] = true
		}
	}
	return out, nil
}

func (b *subjectBucket) Get(ctx context.Context, rel, dst string) error {
	return b.getKey(ctx, b.key(rel), dst)
}

func (b *subjectBucket) getKey(ctx context.Context, key, dst string) error {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.cfg.Upload.Bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("get s3://%s/%s: %w", b.cfg.Upload.Bucket, key, err)
	}
	defer out.Body.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, out.Body); err != nil {
		f.Close()
		return fmt.Errorf("get s3://%s/%s: %w", b.cfg.Upload.Bucket, key, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Put uploads src through an uploader rooted where src sits as rel: the
// drive's (its ledger records the object) or the erasure's scratch tree.
func (b *subjectBucket) Put(ctx context.Context, rel, src, _ string) error {
	root, ok := strings.CutSuffix(filepath.ToSlash(src), "/"+rel)
	if !ok {
		return fmt.Errorf("put %s: %s is not at that place in a tree", rel, src)
	}
	u := b.uploader[root]
	if u == nil {
		o := wire.Upload(b.cfg)
		o.Root = filepath.FromSlash(root)
		if o.Root != b.cfg.Archive.Path {
			o.Require = archive.RequireNone
		}
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		u = upload.New(o, b.creds)
		b.uploader[root] = u
	}
	return u.UploadFile(ctx, rel)
}

func (b *subjectBucket) Delete(ctx context.Context, rel string) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Upload.Bucket), Key: aws.String(b.key(rel))})
	if err != nil {
		return fmt.Errorf("delete s3://%s/%s: %w", b.cfg.Upload.Bucket, b.key(rel), err)
	}
	return nil
}
