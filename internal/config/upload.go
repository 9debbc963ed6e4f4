package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/practable/lablog/internal/cloud/upload"
)

// Upload configures shipping the archive's published hourly files to an
// S3-compatible bucket. It is off while Endpoint is empty.
type Upload struct {
	// Endpoint is the S3 service's base URL: https://s3.eu-west-2.amazonaws.com,
	// https://<account>.r2.cloudflarestorage.com, http://127.0.0.1:7070.
	// Empty turns uploading off.
	Endpoint string `yaml:"endpoint"`
	// Region signs the requests (SigV4); S3-compatible servers mostly take
	// any value, AWS wants the bucket's region.
	Region string `yaml:"region"`
	Bucket string `yaml:"bucket"`
	// Prefix is put before every key: <prefix>/site=<site>/stream=.../date=.../<file>.
	Prefix string `yaml:"prefix"`
	// Site names this lablog in the bucket (the site= partition), so one
	// bucket holds a whole fleet.
	Site string `yaml:"site"`
	// PathStyle addresses the bucket as <endpoint>/<bucket>/<key> instead
	// of <bucket>.<endpoint>/<key>; most S3-compatible servers need it.
	PathStyle bool `yaml:"path_style"`
	// CredentialsFile holds access_key_id and secret_access_key (mode 0600,
	// or 0640 for a group the service runs in; never readable by others).
	// A relative path is resolved against the config file's directory.
	CredentialsFile string `yaml:"credentials_file"`
	// Concurrency is how many files are uploaded at once.
	Concurrency int `yaml:"concurrency"`
	// BandwidthLimit caps the upload rate in bytes per second; 0 is no cap.
	BandwidthLimit Size `yaml:"bandwidth_limit"`
	// DeleteAfterUpload removes local files once their upload is verified
	// and they are older than KeepDays. Off by default: the drive keeps
	// everything.
	DeleteAfterUpload bool `yaml:"delete_after_upload"`
	// KeepDays is how many days of files stay on the drive, uploaded or
	// not, when DeleteAfterUpload is on.
	KeepDays int `yaml:"keep_days"`
	// WaitForClock holds uploads until the system clock is synchronised:
	// S3 refuses requests signed more than 15 minutes off.
	WaitForClock bool `yaml:"wait_for_clock"`
	// Interval is how often the archive is looked at for new files (a
	// compaction also triggers a look).
	Interval time.Duration `yaml:"interval"`
	// MinBackoff and MaxBackoff bound the jittered exponential wait after
	// a failed upload.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Timeout bounds one request (a PutObject of one file included).
	Timeout time.Duration `yaml:"timeout"`
}

// Enabled reports whether uploading is configured.
func (u Upload) Enabled() bool { return u.Endpoint != "" }

func defaultUpload() Upload {
	return Upload{
		Region:          upload.DefaultRegion,
		CredentialsFile: "upload-credentials",
		Concurrency:     upload.DefaultConcurrency,
		KeepDays:        upload.DefaultKeepDays,
		WaitForClock:    true,
		Interval:        upload.DefaultInterval,
		MinBackoff:      upload.DefaultMinBackoff,
		MaxBackoff:      upload.DefaultMaxBackoff,
		Timeout:         upload.DefaultTimeout,
	}
}

// Bucket names as S3 allows them for new buckets (lower case, digits, dots
// and hyphens, 3 to 63 characters, starting and ending with a letter or
// digit).
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// A site is a partition value in every key (site=<site>), like a stream name.
var siteRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

// validateUpload checks the upload section; nothing is required while it is off.
func (c Config) validateUpload(add func(field, format string, args ...any)) {
	u := c.Upload
	if !u.Enabled() {
		return
	}
	if err := checkEndpoint(u.Endpoint); err != nil {
		add("upload.endpoint", "%v", err)
	}
	if u.Region == "" {
		add("upload.region", "must not be empty (S3-compatible servers take any value, e.g. us-east-1)")
	}
	if !bucketRE.MatchString(u.Bucket) {
		add("upload.bucket", "%q is not a bucket name: 3-63 lower-case letters, digits, dots and hyphens", u.Bucket)
	}
	if err := checkPrefix(u.Prefix); err != nil {
		add("upload.prefix", "%v", err)
	}
	switch {
	case u.Site == "":
		add("upload.site", "is required: it names this lablog in the bucket (site=<site>/stream=...)")
	case !siteRE.MatchString(u.Site) || len(u.Site) > 64:
		add("upload.site", "%q: only letters, digits, '.', '_' and '-' (up to 64), starting with a letter or digit", u.Site)
	}
	if u.CredentialsFile == "" {
		add("upload.credentials_file", "must not be empty")
	}
	if u.Concurrency < 1 || u.Concurrency > 64 {
		add("upload.concurrency", "must be between 1 and 64, got %d", u.Concurrency)
	}
	if u.BandwidthLimit < 0 {
		add("upload.bandwidth_limit", "must not be negative, got %v", u.BandwidthLimit)
	} else if u.BandwidthLimit > 0 && u.BandwidthLimit < 16*KiB {
		add("upload.bandwidth_limit", "%v a second is too little to upload an hour's file in time; at least 16KiB, or 0 for no limit", u.BandwidthLimit)
	}
	if u.KeepDays < 1 {
		add("upload.keep_days", "must be at least 1, got %d", u.KeepDays)
	}
	if u.Interval < time.Second {
		add("upload.interval", "must be at least 1s, got %v", u.Interval)
	}
	if u.MinBackoff <= 0 {
		add("upload.min_backoff", "must be positive, got %v", u.MinBackoff)
	}
	if u.MaxBackoff < u.MinBackoff {
		add("upload.max_backoff", "must be at least upload.min_backoff (%v), got %v", u.MinBackoff, u.MaxBackoff)
	}
	if u.Timeout < time.Second {
		add("upload.timeout", "must be at least 1s, got %v", u.Timeout)
	}
}

// checkEndpoint accepts an http or https base URL without credentials,
// query or bucket path.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %v", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("scheme must be https (or http), got %q", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		// Never echo the URL: it holds a credential.
		return fmt.Errorf("must not hold a user or password: put the keys in upload.credentials_file")
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return fmt.Errorf("%q: give the service's base URL only (the bucket goes in upload.bucket)", raw)
	}
	return nil
}

// checkPrefix accepts "" or slash-separated segments with no empty, "." or
// ".." segment and no leading or trailing slash.
func checkPrefix(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("%q: no leading or trailing '/'", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%q: empty, '.' or '..' segment", p)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f || r == '\\' {
				return fmt.Errorf("%q: control characters and '\\' are not allowed", p)
			}
		}
	}
	return nil
}
