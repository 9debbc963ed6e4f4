// Package httpserve is the one way lablog opens an HTTP listener: every
// server it runs (the status page, the /addLog ingest) is bounded in time,
// connections and header size, sends security headers, and answers only to
// the host names it was configured for, so a slow, greedy or rebinding
// client costs little and sees nothing.
package httpserve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/practable/lablog/internal/platform/defaults"
)

// Options bound a server. Zero values take the defaults below.
type Options struct {
	// Hosts are the names a request's Host header may carry besides IP
	// literals, "localhost" and this machine's host name (with and without
	// ".local"); "*" allows any. A Host check defeats DNS rebinding: a page
	// on another site whose name was pointed at this address sends its own
	// name, which is not in the list.
	Hosts []string

	MaxConns          int // open connections at once; further ones wait in the kernel's backlog
	MaxConnsPerClient int // open connections from one IP address; further ones are closed at once
	// Proxies are addresses exempt from MaxConnsPerClient: a reverse proxy
	// carries every client's calls on connections of its own.
	Proxies        []netip.Prefix
	MaxHeaderBytes int

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration // a keep-alive connection with no request

	// TLS, when set, makes the server speak HTTPS.
	TLS *tls.Config

	Logger *slog.Logger
}

// Defaults: generous for a page, a JSON API and statements of a few KiB,
// small enough that hundreds of hostile connections cost a few MiB.
const (
	DefaultMaxConns          = 512
	DefaultMaxConnsPerClient = 32
	DefaultMaxHeaderBytes    = 8 << 10
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
)

func (o Options) withDefaults() Options {
	defaults.Positive(&o.MaxConns, DefaultMaxConns)
	defaults.Positive(&o.MaxConnsPerClient, DefaultMaxConnsPerClient)
	defaults.Positive(&o.MaxHeaderBytes, DefaultMaxHeaderBytes)
	defaults.Positive(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	defaults.Positive(&o.ReadTimeout, DefaultReadTimeout)
	defaults.Positive(&o.WriteTimeout, DefaultWriteTimeout)
	defaults.Positive(&o.IdleTimeout, DefaultIdleTimeout)
	defaults.Logger(&o.Logger)
	return o
}

// Server is a listening HTTP server; Run serves it until its context ends.
type Server struct {
	srv *http.Server
	ln  net.Listener
	tls bool // kept apart: Serve sets srv.TLSConfig for HTTP/2 even without TLS
}

// New listens on addr (host:port; port 0 picks a free one) and wraps h
// with the Host check and the security headers.
func New(addr string, h http.Handler, o Options) (*Server, error) {
	o = o.withDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	hosts := newHostSet(o.Hosts)
	srv := &http.Server{
		Handler:           SecurityHeaders(hosts.check(h)),
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		TLSConfig:         o.TLS,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	return &Server{srv: srv, ln: newLimitListener(ln, o.MaxConns, o.MaxConnsPerClient, o.Proxies), tls: o.TLS != nil}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the server's base URL as this machine reaches it (LocalAddr).
func (s *Server) URL() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + LocalAddr(s.ln.Addr().String())
}

// LocalAddr is where this machine reaches a server listening on listen: a
// wildcard address becomes the loopback one, which a browser here can open.
func LocalAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// shutdownGrace is how long Run lets requests in flight finish.
const shutdownGrace = 2 * time.Second

// Run serves until ctx ends, then lets requests in flight finish for a
// moment and closes every connection. It returns nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		if s.tls {
			errc <- s.srv.ServeTLS(s.ln, "", "")
		} else {
			errc <- s.srv.Serve(s.ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
