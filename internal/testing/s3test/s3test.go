// Package s3test runs a real S3 server for tests: versitygw (the Versity S3
// Gateway) with its POSIX backend, on a free loopback port, storing objects
// in a temporary folder, with credentials of its own.
//
// The binary is VERSITYGW_BIN, else versitygw on PATH or in $GOPATH/bin
// (`go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`). Without
// it tests skip, saying why, unless LABLOG_REQUIRE_S3=1 (set by CI), when
// they fail.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/practable/lablog/internal/testing/testkit"
)

// Version is the versitygw release the tests are written against.
const Version = "v1.8.0"

// Server is a running versitygw.
type Server struct {
	URL       string // http://127.0.0.1:port
	Addr      string // 127.0.0.1:port
	AccessKey string
	SecretKey string
	Region    string
	Dir       string // the POSIX backend's root: one folder per bucket

	bin  string
	log  *testkit.LogBuffer
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary finds versitygw, or says why not.
func Binary() (string, error) {
	if p := os.Getenv("VERSITYGW_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VERSITYGW_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	if gopath != "" {
		p := filepath.Join(gopath, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("versitygw not found (set VERSITYGW_BIN, or go install github.com/versity/versitygw/cmd/versitygw@" + Version + ")")
}

// Require returns the binary, or skips the test (fails it when
// LABLOG_REQUIRE_S3=1).
func Require(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("LABLOG_REQUIRE_S3") == "1" {
			t.Fatalf("LABLOG_REQUIRE_S3=1: %v", err)
		}
		t.Skipf("no real S3 server: %v", err)
	}
	return bin
}

// Start runs versitygw for the test and stops it at the test's end.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Require(t)
	s := &Server{
		Dir:       t.TempDir(),
		AccessKey: "lablogtest" + randHex(5),
		SecretKey: randHex(20),
		Region:    "us-east-1",
		bin:       bin,
		log:       &testkit.LogBuffer{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	ln.Close()
	s.URL = "http://" + s.Addr
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("versitygw log:\n%s", s.log.String())
		}
	})
	return s
}

// start launches the process and waits until it answers HTTP.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	// The keys go in the environment, not on a command line others can
	// read; nothing of the test's own environment is passed on.
	cmd := exec.Command(s.bin, "--port", s.Addr, "--region", s.Region, "--quiet", "posix", s.Dir)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "ROOT_ACCESS_KEY_ID=" + s.AccessKey, "ROOT_SECRET_ACCESS_KEY=" + s.SecretKey}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	return s.awaitReady(done)
}

// awaitReady polls until any HTTP answer comes (an anonymous GET is a 403),
// the process exits, or 30 s pass.
func (s *Server) awaitReady(exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("versitygw exited before serving:\n%s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer on %s within 30s: %v\n%s", s.Addr, err, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server (objects stay in Dir); Restart starts it again on
// the same port.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Restart starts a stopped server again, on the same address and folder.
func (s *Server) Restart() error { return s.start() }

// Client is an S3 client of the server with its root credentials, built
// from explicit options only (no shared config, no AWS_* variables).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(s.URL),
		Region:                     s.Region,
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 &http.Client{Transport: &http.Transport{Proxy: nil}},
	})
}

// Bucket creates a bucket through the S3 API.
func (s *Server) Bucket(t testing.TB, name string) {
	t.Helper()
	if _, err := s.Client().CreateBucket(Ctx(t), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// Object is one object of a listing.
type Object struct {
	Key  string
	Size int64
}

// List returns every object of bucket, all pages, in key order.
func (s *Server) List(t testing.TB, bucket string) []Object {
	t.Helper()
	var out []Object
	p := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(Ctx(t))
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			out = append(out, Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)})
		}
	}
	return out
}

// Download fetches every object of bucket into dir, a file per key.
func (s *Server) Download(t testing.TB, bucket, dir string) []Object {
	t.Helper()
	objs := s.List(t, bucket)
	for _, o := range objs {
		resp, err := s.Client().GetObject(Ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Key)})
		if err != nil {
			t.Fatalf("get %s: %v", o.Key, err)
		}
		path := filepath.Join(dir, filepath.FromSlash(o.Key))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(f, resp.Body)
		resp.Body.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("download %s: %v", o.Key, err)
		}
	}
	return objs
}

// Log is what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Ctx is a context for a test's S3 calls, ended with the test.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
