#!/usr/bin/env python3
"""Writes the seed corpus of the `tokens` target (corpus/tokens/seed-*): real
tokens of each kind, and the JSON of a real JWT header and payload (the
target base64url-encodes its input into those segments).

The refresh key ([7; 32]) and the HS256 secret ([9; 32]) are the target's,
so the `rft_` seed parses and the HS256 JWT verifies (at the target's `NOW`).
The EdDSA ring is generated afresh in each run: its seed JWT has the right
shape, not a valid `kid` or signature. Run from fuzz/: python3 make_seeds.py
"""
import base64, hashlib, hmac, json, os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "tokens")
NOW = 1_800_000_010


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def write(name: str, text: str) -> None:
    with open(os.path.join(OUT, "seed-" + name), "w") as f:
        f.write(text)


os.makedirs(OUT, exist_ok=True)
# Fixed bytes, so the seeds do not change from one run to the next.
write("session", "ses_" + b64(bytes(range(32))))

refresh_key = bytes([7] * 32)
sid, gen, secret = bytes(range(16, 32)), (3).to_bytes(4, "big"), bytes(range(64, 96))
tag = hmac.new(refresh_key, b"sk/v1/refresh-tag\0" + sid + gen + secret, "sha256").digest()[:16]
write("refresh", "rft_" + b64(sid + gen + secret + tag))

claims = {"iss": "https://sessions.example", "aud": "api", "sub": "user-1", "sid": "s-1",
          "jti": "j-1", "iat": NOW, "exp": NOW + 300, "nbf": NOW, "role": "admin"}
payload = json.dumps(claims, separators=(",", ":"))
hs_secret = bytes([9] * 32)
hs_kid = b64(hashlib.sha256(b"sk/v1/kid" + hs_secret).digest()[:12])
hs_header = json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": hs_kid}, separators=(",", ":"))
signing_input = b64(hs_header.encode()) + "." + b64(payload.encode())
write("jwt-hs256", signing_input + "." + b64(hmac.new(hs_secret, signing_input.encode(), "sha256").digest()))

ed_header = json.dumps({"alg": "EdDSA", "typ": "at+jwt", "kid": b64(bytes(16))}, separators=(",", ":"))
write("jwt-eddsa", b64(ed_header.encode()) + "." + b64(payload.encode()) + "." + b64(bytes(64)))

write("header-json", hs_header)
write("payload-json", payload)
