package httpserve

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certRecheck is how often the files are looked at for a renewal.
const certRecheck = 5 * time.Second

// CertFiles is a TLS configuration serving the PEM certificate (chain) and
// key in two files, read again when either changes, so a renewed
// certificate (certbot, an ACME client, a copy by hand) needs no restart.
// A renewal that does not load (half copied, mismatched) leaves the last
// good pair in use until the files are right.
func CertFiles(certFile, keyFile string) (*tls.Config, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := c.load(); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}, nil
}

type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // the files' sizes and times when cert was read
	checked time.Time
}

func (c *certReloader) fileStamp() string {
	var s string
	for _, f := range []string{c.certFile, c.keyFile} {
		if st, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%d.%d;", st.Size(), st.ModTime().UnixNano())
		}
	}
	return s
}

func (c *certReloader) load() error {
	stamp := c.fileStamp()
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls certificate %s, key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.stamp = &cert, stamp
	return nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= certRecheck {
		c.checked = now
		if c.fileStamp() != c.stamp {
			_ = c.load() // on failure the last good pair stays
		}
	}
	return c.cert, nil
}
