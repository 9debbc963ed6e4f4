// Package sdnotifytest is a fake systemd notify socket for tests of
// Type=notify behaviour (READY, WATCHDOG, STOPPING).
package sdnotifytest

import (
	"net"
	"path/filepath"
	"testing"
)

// Listen makes a fake notify socket and points NOTIFY_SOCKET at it, as
// systemd does for a Type=notify service. Datagrams arrive on the returned
// channel in the order they were sent; it is closed after the test.
func Listen(t testing.TB) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	ch := make(chan string, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return ch
}
