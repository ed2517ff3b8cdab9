#!/usr/bin/env python3
"""Writes the seeds of tests/fuzz/corpus/fuzz_scram: real SCRAM-SHA-256 exchanges (RFC 5802) with
the password, salt and nonces fuzz_scram.cpp fixes, so that the fuzzer starts past the nonce
and proof checks. Run from the repository root: python3 tests/fuzz/make_scram_seeds.py"""
import base64
import hashlib
import hmac
import pathlib

PASSWORD = b"pencil"
SALT = b"fuzz-salt-16byte"
ITERATIONS = 4096
SERVER_NONCE = "fuzzServerNonce"
CLIENT_NONCE = "fuzzClientNonce"
OUT = pathlib.Path(__file__).parent / "corpus" / "fuzz_scram"

salted = hashlib.pbkdf2_hmac("sha256", PASSWORD, SALT, ITERATIONS)
client_key = hmac.digest(salted, b"Client Key", "sha256")
stored_key = hashlib.sha256(client_key).digest()
server_key = hmac.digest(salted, b"Server Key", "sha256")
b64 = lambda b: base64.b64encode(b).decode()


def exchange(gs2, client_nonce, server_nonce, extensions=""):
    """client-first, server-first, client-final, server-final for one exchange."""
    bare = "n=,r=" + client_nonce + extensions
    first = gs2 + bare
    nonce = client_nonce + server_nonce
    server_first = f"r={nonce},s={b64(SALT)},i={ITERATIONS}"
    without_proof = f"c={b64(gs2.encode())},r={nonce}"
    auth = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(stored_key, auth, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = f"{without_proof},p={b64(proof)}"
    server_final = "v=" + b64(hmac.digest(server_key, auth, "sha256"))
    return first, server_first, final, server_final


seeds = {}
# Server side (control byte 0): the client's two messages.
first, _, final, _ = exchange("n,,", "rOprNGfwEbeRWgbNEkqO", SERVER_NONCE)
seeds["server_ok"] = b"\x00" + f"{first}\n{final}".encode()
first, _, final, _ = exchange("y,,", "abc123", SERVER_NONCE)
seeds["server_y_header"] = b"\x00" + f"{first}\n{final}".encode()
seeds["server_wrong_proof"] = b"\x00" + f"{first}\n{final[:-8]}AAAAAAA=".encode()
seeds["server_channel_binding"] = b"\x00p=tls-server-end-point,,n=,r=abc\nc=biws,r=abc,p=AAAA"
seeds["server_authzid"] = b"\x00n,a=alice,n=,r=abc\n"
# Client side (control byte 1): the server's two messages, answering fuzz_scram's client nonce.
_, server_first, _, server_final = exchange("n,,", CLIENT_NONCE, "3rfcNHYJY1ZVvWVs7j")
seeds["client_ok"] = b"\x01" + f"{server_first}\n{server_final}".encode()
seeds["client_server_error"] = b"\x01" + f"{server_first}\ne=invalid-proof".encode()
seeds["client_big_iterations"] = b"\x01r=" + CLIENT_NONCE.encode() + b"x,s=c2FsdA==,i=99999999\n"
# Verifiers in pg_authid's form (the whole input after the control byte).
seeds["verifier"] = (b"\x00SCRAM-SHA-256$4096:" + b64(SALT).encode() + b"$" +
                     b64(stored_key).encode() + b":" + b64(server_key).encode())

OUT.mkdir(parents=True, exist_ok=True)
for name, data in seeds.items():
    (OUT / name).write_bytes(data)
