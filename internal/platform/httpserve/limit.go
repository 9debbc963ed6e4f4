package httpserve

import (
	"net"
	"net/netip"
	"sync"
)

// limitListener bounds the connections a server holds: at most max at once
// (Accept waits for one to close, leaving newer ones in the kernel's
// backlog), and at most perClient from one IP address (more are closed at
// once, so one greedy client cannot lock out everyone else).
type limitListener struct {
	net.Listener
	slots     chan struct{}
	perClient int
	proxies   []netip.Prefix // exempt from perClient

	mu      sync.Mutex
	clients map[string]int
}

func newLimitListener(ln net.Listener, max, perClient int, proxies []netip.Prefix) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), perClient: perClient, proxies: proxies, clients: map[string]int{}}
}

func (l *limitListener) capped(c net.Conn) bool {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		for _, p := range l.proxies {
			if p.Contains(ip.Unmap()) {
				return false
			}
		}
	}
	return true
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		l.slots <- struct{}{}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		ip := clientIP(c)
		l.mu.Lock()
		if l.clients[ip] >= l.perClient && l.capped(c) {
			l.mu.Unlock()
			c.Close()
			<-l.slots
			continue
		}
		l.clients[ip]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	if l.clients[ip]--; l.clients[ip] <= 0 {
		delete(l.clients, ip)
	}
	l.mu.Unlock()
	<-l.slots
}

func clientIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// limitedConn gives its slot back once, however often it is closed.
type limitedConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
