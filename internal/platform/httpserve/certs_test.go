package httpserve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/testkit"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with serial n.
func writeCert(t *testing.T, certFile, keyFile string, n int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "lablog test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial is the serial of the certificate the server presents.
func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestTLSCertificateReloadedWhenRenewed(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, key, 1)
	cfg, err := CertFiles(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, hello, Options{TLS: cfg})
	if got := servedSerial(t, s.Addr().String()); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	if u := s.URL(); u[:8] != "https://" {
		t.Errorf("URL %s", u)
	}
	// The real renewal is served within a recheck.
	writeCert(t, cert, key, 2)
	testkit.Eventually(t, 3*certRecheck, "the renewed certificate served", func() bool {
		return servedSerial(t, s.Addr().String()) == 2
	})
	if _, err := CertFiles(filepath.Join(dir, "none.pem"), key); err == nil {
		t.Error("a missing certificate was accepted")
	}
}
