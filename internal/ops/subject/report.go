package subject

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/practable/lablog/internal/platform/secretfile"
)

// Files of the report's signature, in the data directory. The key is
// ed25519 rather than an HMAC: whoever checks a report needs only the
// public key, which cannot make signatures, so handing it to an auditor
// does not let them (or anyone who copies it) forge reports.
const (
	KeyFile    = "subject-report.key" // PKCS #8 PEM, mode 0600
	PubKeyFile = "subject-report.pub" // PKIX PEM
	ReportDir  = "erasure-reports"
)

// Report is what an erasure did, signed. It names the user by the SHA-256
// of the id only; the requester's id hashes to it.
type Report struct {
	Tool       string     `json:"tool"`
	Version    string     `json:"version,omitempty"`
	UserSHA256 string     `json:"user_sha256"`
	Started    time.Time  `json:"started"`
	Finished   time.Time  `json:"finished"`
	Archive    string     `json:"archive,omitempty"`
	Bucket     string     `json:"bucket,omitempty"`
	BufferRows *int64     `json:"buffer_rows,omitempty"` // records' rows removed from the buffer
	Files      []FilePlan `json:"files"`
	Rows       int64      `json:"rows_removed"` // from archive files and bucket objects
	Tombstone  string     `json:"tombstone_list"`
	Analytics  bool       `json:"analytics_state_dropped"`
}

func (e *eraser) report() (string, *Report, error) {
	r := &Report{Tool: "lablog subject erase", Version: e.o.Version, UserSHA256: e.j.UserHash, Started: e.j.Started,
		Finished: e.o.Now().UTC(), Archive: e.o.Archive, BufferRows: e.j.Buffer, Files: e.j.Files,
		Tombstone: filepath.Join(e.o.DataDir, TombstoneFile), Analytics: e.j.Analytic}
	if r.Files == nil {
		r.Files = []FilePlan{}
	}
	if e.o.Bucket != nil {
		r.Bucket = e.o.Bucket.String()
	}
	for _, f := range r.Files {
		r.Rows += f.Rows
	}
	body, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", nil, err
	}
	body = append(body, '\n')
	key, err := LoadOrCreateKey(e.o.DataDir)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(e.o.DataDir, ReportDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	// The name is fixed by the journal, so a re-run rewrites the same one.
	name := e.j.Started.Format("20060102T150405Z") + "-" + strings.TrimPrefix(e.j.UserHash, "sha256:")[:12] + ".json"
	path := filepath.Join(dir, name)
	if err := writeAtomic(path+".sig", ed25519.Sign(key, body), 0o600); err != nil {
		return "", nil, err
	}
	if err := writeAtomic(path, body, 0o600); err != nil {
		return "", nil, err
	}
	return path, r, nil
}

// LoadOrCreateKey returns the signing key in dataDir, making one (and its
// public half beside it) on first use.
func LoadOrCreateKey(dataDir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dataDir, KeyFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("report key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := secretfile.CheckMode(path, fi); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("report key %s: not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("report key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("report key %s: not an ed25519 key", path)
	}
	return ek, nil
}

func createKey(dataDir string) (ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pp, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	// The public half first: a crash between the two leaves no key that
	// signs reports nobody can check.
	if err := writeAtomic(filepath.Join(dataDir, PubKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pp}), 0o644); err != nil {
		return nil, fmt.Errorf("report key: %w", err)
	}
	if err := writeAtomic(filepath.Join(dataDir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		return nil, fmt.Errorf("report key: %w", err)
	}
	return priv, nil
}

// VerifyReport checks the report at path against its .sig file and the
// public key in PEM at pubPath, and returns it.
func VerifyReport(path, pubPath string) (*Report, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sig, err := os.ReadFile(path + ".sig")
	if err != nil {
		return nil, err
	}
	pb, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(pb)
	if blk == nil {
		return nil, fmt.Errorf("%s: not PEM", pubPath)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pubPath, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 key", pubPath)
	}
	if !ed25519.Verify(pub, body, sig) {
		return nil, fmt.Errorf("%s: signature does not match (report altered, or signed by another key)", path)
	}
	var r Report
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}
