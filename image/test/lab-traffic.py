#!/usr/bin/python3
"""The lab's traffic in the emulated image test (test only, never in the image).

A lab UI that is a local client of the real relay host: one websocket per
stream on ws://127.0.0.1:8888/ws/<stream>, sending a log message at random
times (RATE per second on average). The relay host passes what a local client
sends to the other local clients of the stream, lablog among them, so every
record lablog makes in the guest went through the real relay host.

Usage: lab-traffic.py [--rate R] [--port P] STREAM...
Python's standard library only (the guest has no websocket module).
"""

import argparse
import base64
import json
import os
import random
import socket
import struct
import sys
import threading
import time

HOST, PORT = "127.0.0.1", 8888


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Conn:
    """A minimal RFC 6455 client: text frames out, pings answered."""

    def __init__(self, stream):
        self.sock = socket.create_connection((HOST, PORT), timeout=10)
        self.lock = threading.Lock()
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws/{stream} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("connection closed during the handshake")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise OSError(f"handshake: {status.decode(errors='replace')}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]
        self.sock.settimeout(None)
        self.closed = threading.Event()
        threading.Thread(target=self.reader, daemon=True).start()

    def send(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self.lock:
            self.sock.sendall(head + mask + body)

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def reader(self):
        """Discards what the host sends, answers its pings."""
        try:
            while True:
                b0, b1 = self.read(2)
                n = b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", self.read(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", self.read(8))
                payload = self.read(n)
                opcode = b0 & 0x0F
                if opcode == 0x9:
                    self.send(0xA, payload)
                elif opcode == 0x8:
                    raise OSError("closed by the relay host")
        except OSError as e:
            log(f"reader: {e}")
        finally:
            self.closed.set()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def run(stream, rate):
    n = 0
    while True:
        try:
            conn = Conn(stream)
        except OSError as e:
            log(f"{stream}: {e}; retrying")
            time.sleep(1)
            continue
        log(f"{stream}: connected to the relay host")
        try:
            while not conn.closed.is_set():
                time.sleep(random.expovariate(rate))
                n += 1
                msg = {
                    "user": "u-image-test",
                    "t": int(time.time() * 1000),
                    "hardware": stream,
                    "course": "image-test",
                    "type": "log",
                    "payload": {"n": n, "angle": round(random.uniform(-180, 180), 2)},
                }
                conn.send(0x1, json.dumps(msg, separators=(",", ":")).encode())
        except OSError as e:
            log(f"{stream}: {e}")
        conn.close()
        log(f"{stream}: disconnected; reconnecting")
        time.sleep(1)


def main():
    global PORT
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=5.0)
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("streams", nargs="+")
    a = p.parse_args()
    PORT = a.port
    for s in a.streams:
        threading.Thread(target=run, args=(s, a.rate), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
