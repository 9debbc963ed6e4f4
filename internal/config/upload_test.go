package config

import (
	"os"
	"path/filepath"
	"testing"
)

const uploadOK = "upload:\n  endpoint: https://s3.example.org\n  bucket: lab-archive\n  site: bristol\n"

func TestUploadOffNeedsNothing(t *testing.T) {
	c := mustParse(t, oneStream)
	if c.Upload.Enabled() {
		t.Fatalf("upload enabled by default: %+v", c.Upload)
	}
	// Off, its other keys are not judged (the example's empty ones included).
	c = mustParse(t, "upload:\n  bucket: \"\"\n  concurrency: 0\n"+oneStream)
	if c.Upload.Enabled() {
		t.Fatal("enabled without an endpoint")
	}
}

func TestUploadValid(t *testing.T) {
	c := mustParse(t, uploadOK+"  prefix: fleet/v1\n  bandwidth_limit: 512KiB\n"+oneStream)
	u := c.Upload
	if !u.Enabled() || u.Bucket != "lab-archive" || u.Site != "bristol" || u.Prefix != "fleet/v1" || u.BandwidthLimit != 512*KiB ||
		u.Concurrency != 2 || !u.WaitForClock || u.DeleteAfterUpload || u.KeepDays != 30 {
		t.Errorf("upload = %+v", u)
	}
}

func TestUploadValidationErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"no bucket", "upload:\n  endpoint: https://s3.example.org\n  site: a\n" + oneStream,
			`lablog.yaml:1: upload.bucket: "" is not a bucket name: 3-63 lower-case letters, digits, dots and hyphens`},
		{"upper-case bucket", "upload:\n  endpoint: https://s3.example.org\n  bucket: Lab\n  site: a\n" + oneStream,
			`lablog.yaml:3: upload.bucket: "Lab" is not a bucket name: 3-63 lower-case letters, digits, dots and hyphens`},
		{"no site", "upload:\n  endpoint: https://s3.example.org\n  bucket: lab-archive\n" + oneStream,
			"lablog.yaml:1: upload.site: is required: it names this lablog in the bucket (site=<site>/stream=...)"},
		{"site with slash", "upload:\n  endpoint: https://s3.example.org\n  bucket: lab-archive\n  site: a/b\n" + oneStream,
			`lablog.yaml:4: upload.site: "a/b": only letters, digits, '.', '_' and '-' (up to 64), starting with a letter or digit`},
		{"ftp endpoint", "upload:\n  endpoint: ftp://h\n  bucket: lab-archive\n  site: a\n" + oneStream,
			`lablog.yaml:2: upload.endpoint: scheme must be https (or http), got "ftp"`},
		{"endpoint with bucket path", "upload:\n  endpoint: https://h/lab-archive\n  bucket: lab-archive\n  site: a\n" + oneStream,
			`lablog.yaml:2: upload.endpoint: "https://h/lab-archive": give the service's base URL only (the bucket goes in upload.bucket)`},
		{"prefix slash", uploadOK + "  prefix: /a/\n" + oneStream,
			`lablog.yaml:5: upload.prefix: "/a/": no leading or trailing '/'`},
		{"prefix dots", uploadOK + "  prefix: a/../b\n" + oneStream,
			`lablog.yaml:5: upload.prefix: "a/../b": empty, '.' or '..' segment`},
		{"zero concurrency", uploadOK + "  concurrency: 0\n" + oneStream,
			"lablog.yaml:5: upload.concurrency: must be between 1 and 64, got 0"},
		{"tiny bandwidth", uploadOK + "  bandwidth_limit: 1KiB\n" + oneStream,
			"lablog.yaml:5: upload.bandwidth_limit: 1KiB a second is too little to upload an hour's file in time; at least 16KiB, or 0 for no limit"},
		{"zero keep_days", uploadOK + "  keep_days: 0\n" + oneStream,
			"lablog.yaml:5: upload.keep_days: must be at least 1, got 0"},
		{"backoff order", uploadOK + "  min_backoff: 10s\n  max_backoff: 1s\n" + oneStream,
			"lablog.yaml:6: upload.max_backoff: must be at least upload.min_backoff (10s), got 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseErr(t, tc.src); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A URL with a password must be refused without being repeated.
func TestUploadEndpointCredentialNotEchoed(t *testing.T) {
	got := parseErr(t, "upload:\n  endpoint: https://AKIAEXAMPLE:s3cr3tV4lue@h\n  bucket: lab-archive\n  site: a\n"+oneStream)
	want := "lablog.yaml:2: upload.endpoint: must not hold a user or password: put the keys in upload.credentials_file"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestUploadCredentialsFileResolvedNextToConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(path, []byte(uploadOK+oneStream), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "upload-credentials"); c.Upload.CredentialsFile != want {
		t.Errorf("credentials_file = %s, want %s", c.Upload.CredentialsFile, want)
	}
}
