package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/sim/labsim"
)

// cmdSimlab serves a simulated lab and nothing else: a fake relay host on a
// loopback address and simulated UIs publishing on its streams, until
// stopped. The emulated image test runs it inside the guest so that the real
// `lablog run` service records it through relay_host.
func cmdSimlab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("simlab", "[--listen 127.0.0.1:8888] [--streams spin30-33] [--rate 5]",
		"Serve a simulated lab until stopped: a fake relay host on a loopback address with\nsimulated UIs publishing on its streams, for a `lablog run` with relay_host to record\n(the appliance's emulated test does this). Records nothing itself.")
	listen := fs.String("listen", "127.0.0.1:8888", "loopback `address` of the fake relay host")
	streams := fs.String("streams", "spin30-33", "comma-separated stream `names` or ranges (spin30-33)")
	rate := fs.Float64("rate", 5, "average messages per second per stream")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if err := loopbackOnly(*listen); err != nil {
		return fmt.Errorf("simlab: %w", err)
	}
	names, err := config.ExpandList(*streams)
	if err != nil {
		return fmt.Errorf("simlab: %w", err)
	}
	host, err := labsim.NewHost(*listen)
	if err != nil {
		return err
	}
	defer host.Close()
	host.CountOnly = true
	lab := labsim.NewLab(host, labsim.LabOptions{Streams: names, Rate: *rate, JoinProb: 0.15,
		BadFrames: true, Seed: uint64(time.Now().UnixNano())})
	fmt.Fprintf(stdout, "simlab: %d streams (%s ... %s) on %s/ws/<stream>\n",
		len(names), names[0], names[len(names)-1], host.URL())
	return lab.Run(ctx)
}

// loopbackOnly refuses any address a network could reach.
func loopbackOnly(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %s: only a loopback address is allowed", addr)
	}
	return nil
}
