// Package update installs signed lablog packages, checks that the new
// version is healthy and, if it is not, reinstalls the previous one.
//
// Signatures are ed25519 (Go's crypto/ed25519): no keyring, no gpg in the
// image, keys that fit on one line and are read by anyone. The formats:
//
//	public key  (NAME.pub, one line): lablog-update-public-key-v1 BASE64 [comment]
//	private key (0600, one line):      lablog-update-private-key-v1 BASE64SEED [comment]
//	signature   (FILE.sig, five lines):
//	    lablog-update-signature-v1
//	    key KEYID            first 16 hex digits of sha256(public key)
//	    sha256 HEX           of the signed file
//	    size N               bytes of the signed file
//	    sig BASE64           ed25519 over the four lines above, newlines included
//
// The file's name is not signed: a package may be renamed, never changed.
package update

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	publicTag    = "lablog-update-public-key-v1"
	privateTag   = "lablog-update-private-key-v1"
	signatureTag = "lablog-update-signature-v1"
	// SigSuffix names a file's detached signature: FILE.sig.
	SigSuffix = ".sig"
)

// KeyDirs are where lablog looks for trusted public keys (*.pub): the
// ones the package or image ships, then the site's own.
var KeyDirs = []string{"/usr/share/lablog/update-keys", "/etc/lablog/update-keys"}

// PublicKey is a trusted key and where it was read.
type PublicKey struct {
	ID   string
	Key  ed25519.PublicKey
	From string
}

// KeyID names a public key: the first 8 bytes of its sha256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// GenerateKey makes a key pair as the text of its two files.
func GenerateKey(comment string) (public, private []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	line := func(tag string, key []byte) []byte {
		s := tag + " " + base64.StdEncoding.EncodeToString(key)
		if c := strings.Join(strings.Fields(comment), " "); c != "" {
			s += " " + c
		}
		return []byte(s + "\n")
	}
	return line(publicTag, pub), line(privateTag, priv.Seed()), nil
}

// keyLine decodes "TAG BASE64 [comment]" of n bytes.
func keyLine(data []byte, tag string, n int) ([]byte, error) {
	f := strings.Fields(string(data))
	if len(f) < 2 || f[0] != tag {
		if len(f) > 0 && (f[0] == publicTag || f[0] == privateTag) {
			return nil, fmt.Errorf("a %s, want a %s", f[0], tag)
		}
		return nil, fmt.Errorf("not a lablog update key (want a line starting %q)", tag)
	}
	key, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(key) != n {
		return nil, fmt.Errorf("%s: the key is not %d bytes of base64", tag, n)
	}
	return key, nil
}

// ParsePublicKey reads a public key file's text.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	k, err := keyLine(data, publicTag, ed25519.PublicKeySize)
	return ed25519.PublicKey(k), err
}

// ParsePrivateKey reads a private key file's text.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	seed, err := keyLine(data, privateTag, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LoadKeys reads every *.pub in dirs; a missing folder has none. A key file
// that cannot be read is an error: a trusted key silently ignored would
// refuse good updates with a misleading reason.
func LoadKeys(dirs ...string) ([]PublicKey, error) {
	var keys []PublicKey
	for _, dir := range dirs {
		found, err := filepath.Glob(filepath.Join(dir, "*.pub"))
		if err != nil {
			return nil, err
		}
		slices.Sort(found)
		for _, p := range found {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("update key: %w", err)
			}
			k, err := ParsePublicKey(data)
			if err != nil {
				return nil, fmt.Errorf("update key %s: %w", p, err)
			}
			keys = append(keys, PublicKey{ID: KeyID(k), Key: k, From: p})
		}
	}
	return keys, nil
}

// digest is a file's sha256 and size.
func digest(r io.Reader) (sum string, size int64, err error) {
	h := sha256.New()
	size, err = io.Copy(h, r)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

func signedPart(keyID, sum string, size int64) []byte {
	return fmt.Appendf(nil, "%s\nkey %s\nsha256 %s\nsize %d\n", signatureTag, keyID, sum, size)
}

// Sign makes the signature file's text for the content of r.
func Sign(priv ed25519.PrivateKey, r io.Reader) ([]byte, error) {
	sum, size, err := digest(r)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	msg := signedPart(KeyID(priv.Public().(ed25519.PublicKey)), sum, size)
	sig := ed25519.Sign(priv, msg)
	return append(msg, "sig "+base64.StdEncoding.EncodeToString(sig)+"\n"...), nil
}

// ErrNoSignature: the file has no FILE.sig beside it.
var ErrNoSignature = errors.New("no signature")

// SignatureError is a signature that does not make the file trusted.
type SignatureError struct{ Reason string }

func (e *SignatureError) Error() string { return e.Reason }

func refuse(format string, a ...any) error { return &SignatureError{Reason: fmt.Sprintf(format, a...)} }

type signature struct {
	keyID, sum string
	size       int64
	sig        []byte
}

func parseSignature(data []byte) (signature, error) {
	var s signature
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) != 5 || lines[0] != signatureTag {
		return s, refuse("the signature file is not a %s (five lines, the first %q)", signatureTag, signatureTag)
	}
	field := func(i int, name string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok || v == "" {
			return "", refuse("the signature file's line %d is not %q", i+1, name+" ...")
		}
		return v, nil
	}
	var err error
	var size, sig string
	if s.keyID, err = field(1, "key"); err != nil {
		return s, err
	}
	if s.sum, err = field(2, "sha256"); err != nil {
		return s, err
	}
	if size, err = field(3, "size"); err != nil {
		return s, err
	}
	if s.size, err = strconv.ParseInt(size, 10, 64); err != nil {
		return s, refuse("the signature file's size %q is not a number", size)
	}
	if sig, err = field(4, "sig"); err != nil {
		return s, err
	}
	if s.sig, err = base64.StdEncoding.DecodeString(sig); err != nil || len(s.sig) != ed25519.SignatureSize {
		return s, refuse("the signature file's sig is not an ed25519 signature in base64")
	}
	return s, nil
}

// Verify checks that sigData signs the content of r with one of keys, and
// returns that key. Every refusal is a *SignatureError that says why.
func Verify(keys []PublicKey, sigData []byte, r io.Reader) (PublicKey, error) {
	s, err := parseSignature(sigData)
	if err != nil {
		return PublicKey{}, err
	}
	if len(keys) == 0 {
		return PublicKey{}, refuse("no trusted update keys on this machine (*.pub in %s)", strings.Join(KeyDirs, " or "))
	}
	i := slices.IndexFunc(keys, func(k PublicKey) bool { return k.ID == s.keyID })
	if i < 0 {
		ids := make([]string, len(keys))
		for j, k := range keys {
			ids[j] = k.ID
		}
		return PublicKey{}, refuse("signed by key %s, which this machine does not trust (it trusts %s)", s.keyID, strings.Join(ids, ", "))
	}
	k := keys[i]
	if !ed25519.Verify(k.Key, signedPart(s.keyID, s.sum, s.size), s.sig) {
		return PublicKey{}, refuse("the signature is forged or damaged: it does not verify with key %s (%s)", k.ID, k.From)
	}
	sum, size, err := digest(r)
	if err != nil {
		return PublicKey{}, fmt.Errorf("verify: %w", err)
	}
	if sum != s.sum || size != s.size {
		return PublicKey{}, refuse("the file is not the one signed: sha256 %s, %d bytes; the signature is for sha256 %s, %d bytes", sum, size, s.sum, s.size)
	}
	return k, nil
}

// VerifyFile verifies path against path.sig.
func VerifyFile(keys []PublicKey, path string) (PublicKey, error) {
	sig, err := os.ReadFile(path + SigSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return PublicKey{}, fmt.Errorf("%w: %s has no signature file %s%s beside it (make one with lablog update sign)",
			ErrNoSignature, filepath.Base(path), filepath.Base(path), SigSuffix)
	}
	if err != nil {
		return PublicKey{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return PublicKey{}, err
	}
	defer f.Close()
	return Verify(keys, sig, f)
}

// isRefusal says whether err is a signature that makes the file untrusted.
func isRefusal(err error) bool {
	var se *SignatureError
	return errors.Is(err, ErrNoSignature) || errors.As(err, &se)
}
