#!/usr/bin/env python3
"""Holds N idle, authenticated PostgreSQL connections and reports what they cost a proxy.

Usage: idle_client.py --port P --user U --password W --database D --clients N --pid PID

Reads VmRSS of PID (/proc/PID/status), opens N connections to 127.0.0.1:P, each through the
startup message and authentication (md5, SCRAM-SHA-256 or cleartext, whichever the server
asks for) up to ReadyForQuery, waits a moment, reads VmRSS again, and prints one line:

    clients=N ready=R failed=F rss_before_kb=B rss_after_kb=A kb_per_client=K seconds=S

then closes them all. Python 3 standard library only (asyncio, hashlib, hmac).
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import struct
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def message(kind, body):
    return kind + struct.pack("!i", len(body) + 4) + body


async def read_message(reader):
    header = await reader.readexactly(5)
    length = struct.unpack("!i", header[1:])[0]
    return header[:1], await reader.readexactly(length - 4)


class Scram:
    """The client side of SCRAM-SHA-256 without channel binding (RFC 5802, RFC 7677)."""

    salted_cache = {}

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def first(self):
        data = ("n,," + self.first_bare).encode()
        return message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(data)) + data)

    def final(self, server_first):
        fields = dict(item.split("=", 1) for item in server_first.split(","))
        if not fields["r"].startswith(self.nonce):
            raise RuntimeError("server nonce does not extend ours")
        salt, iterations = base64.b64decode(fields["s"]), int(fields["i"])
        key = (self.password, salt, iterations)
        if key not in Scram.salted_cache:
            Scram.salted_cache[key] = hashlib.pbkdf2_hmac("sha256", self.password, salt,
                                                          iterations)
        salted = Scram.salted_cache[key]
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={fields['r']}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return message(b"p", f"{without_proof},p={base64.b64encode(proof).decode()}".encode())


async def connect(args):
    """An open, idle connection (reader, writer) that has seen ReadyForQuery."""
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    params = f"user\0{args.user}\0database\0{args.database}\0\0".encode()
    body = struct.pack("!i", 196608) + params
    writer.write(struct.pack("!i", len(body) + 4) + body)
    scram = None
    while True:
        kind, body = await read_message(reader)
        if kind == b"R":
            code = struct.unpack("!i", body[:4])[0]
            if code == 5:  # md5
                inner = hashlib.md5((args.password + args.user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                writer.write(message(b"p", b"md5" + outer.encode() + b"\0"))
            elif code == 3:  # cleartext
                writer.write(message(b"p", args.password.encode() + b"\0"))
            elif code == 10:  # SASL
                scram = Scram(args.password)
                writer.write(scram.first())
            elif code == 11:  # SASLContinue
                writer.write(scram.final(body[4:].decode()))
            elif code not in (0, 12):
                raise RuntimeError(f"authentication request {code} not supported")
        elif kind == b"E":
            raise RuntimeError(body.replace(b"\0", b" ").decode(errors="replace"))
        elif kind == b"Z":
            return reader, writer


async def run(args):
    before = rss_kb(args.pid)
    started = time.monotonic()
    gate = asyncio.Semaphore(args.concurrency)
    connections, errors = [], []

    async def one():
        async with gate:
            try:
                connections.append(await connect(args))
            except (OSError, RuntimeError, asyncio.IncompleteReadError) as e:
                errors.append(str(e))

    await asyncio.gather(*(one() for _ in range(args.clients)))
    elapsed = time.monotonic() - started
    await asyncio.sleep(args.settle)
    after = rss_kb(args.pid)
    per_client = (after - before) / max(len(connections), 1)
    print(f"clients={args.clients} ready={len(connections)} failed={len(errors)} "
          f"rss_before_kb={before} rss_after_kb={after} kb_per_client={per_client:.2f} "
          f"seconds={elapsed:.1f}", flush=True)
    if errors:
        print(f"idle_client: first error: {errors[0]}", file=sys.stderr)
    for _, writer in connections:
        writer.write(message(b"X", b""))
        writer.close()
    return 0 if not errors else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--database", required=True)
    p.add_argument("--clients", type=int, default=10000)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    p.add_argument("--settle", type=float, default=2.0, help="seconds before the second RSS")
    sys.exit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
