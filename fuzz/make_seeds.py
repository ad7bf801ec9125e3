#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (corpus/<target>/seed-*).
Every seed is fixed bytes: running this again changes nothing.

- tokens: real tokens of each kind, and the JSON of a real JWT header and
  payload (the target base64url-encodes its input into those segments).
  The refresh key ([7; 32]) and the HS256 secret ([9; 32]) are the
  target's, so the `rft_` seed parses and the HS256 JWT verifies (at the
  target's `NOW`). The EdDSA ring is generated afresh in each run: its seed
  JWT has the right shape, not a valid `kid` or signature.
- cookies: a flags byte, then `Cookie` header values split on `\n`, with
  `{tok}` where the target puts its live session's token.
- attributes: JSON objects, and `<document>\0<merge patch>` pairs.
- records: records as each store writes them (redb: a format byte and
  postcard; Redis: a MessagePack array of strings), the PostgreSQL client
  blob, and the Redis key texts (lowercase hex).

Run from anywhere: python3 fuzz/make_seeds.py
"""
import base64, hashlib, hmac, json, os, struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
NOW = 1_800_000_010


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def write_to(target: str, name: str, data) -> None:
    out = os.path.join(CORPUS, target)
    os.makedirs(out, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(out, "seed-" + name), "wb") as f:
        f.write(data)


def write(name: str, text: str) -> None:
    write_to("tokens", name, text)


# ---- tokens ----
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


# ---- cookies ----
GET, POST_NO_CSRF, POST = b"\x00", b"\x01", b"\x03"
ses = "ses_" + b64(bytes(range(32)))  # well formed, no such session
for name, flags, headers in [
    ("get", GET, ["__Host-session={tok}"]),
    ("get-among-others", GET, ["a=1; __Host-session={tok}; theme=dark"]),
    ("get-quoted-spaced", GET, ['x__Host-session=no;novalue; __Host-session = "{tok}" ']),
    ("get-unknown-token", GET, ["__Host-session=" + ses]),
    ("get-duplicate-one-header", GET, ["__Host-session={tok}; __Host-session=" + ses]),
    ("get-two-headers", GET, ["lang=de", "__Host-session={tok}"]),
    ("post", POST, ["__Host-session={tok}"]),
    ("post-no-csrf", POST_NO_CSRF, ["__Host-session={tok}"]),
    ("post-duplicate-two-headers", POST, ["__Host-session={tok}", "a=1; __Host-session={tok}"]),
]:
    write_to("cookies", name, flags + "\n".join(headers).encode())
# Another cookie's value may hold any octet (UTF-8 `café`, Latin-1 `é`).
write_to("cookies", "get-non-utf8-neighbours",
         GET + b"pref=caf\xc3\xa9; __Host-session={tok}\nold=\xe9")

# ---- attributes ----
def compact(v) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


write_to("attributes", "plain", compact(
    {"cart": 3, "theme": "dark", "tags": ["a", "b"], "seen": {"home": True, "at": None}}))
write_to("attributes", "pretty", json.dumps(
    {"user": {"name": "Ada", "roles": ["admin", "ops"]}, "visits": -42}, indent=2))
write_to("attributes", "escapes-and-numbers",
         r'{"name":"caf\u00e9 \"q\"\n","price":1.5e3,"big":12345678901234567890,'
         r'"neg":-0,"tiny":1e-7,"ключ":"значение","emoji":"\ud83d\ude00"}')
write_to("attributes", "deep", '{"d":' * 15 + "1" + "}" * 15)
write_to("attributes", "duplicate-key", '{"a":1,"b":{"c":2,"c":3}}')
write_to("attributes", "patch", compact({"a": {"b": 1, "c": 2}, "d": [1, 2], "e": "x"}) + "\0" +
         compact({"a": {"b": None, "z": {"y": 1}}, "d": None, "f": [{"g": None}]}))
write_to("attributes", "patch-not-object", '{"a":1}\0[1,2]')


# ---- records ----
def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n: int) -> bytes:  # postcard's i64
    return varint((n << 1) ^ (n >> 63))


def pstr(s: str) -> bytes:
    b = s.encode()
    return varint(len(b)) + b


def opt(x) -> bytes:
    return b"\x00" if x is None else b"\x01" + x


def pclient(ip=None, ua=None, device=None, fingerprint=None) -> bytes:
    """ClientV1 (redb's DiskClientV1 is the same): postcard."""
    if ip is not None:
        ip = (b"\x00" + bytes(ip)) if len(ip) == 4 else (b"\x01" + bytes(ip))
    return (opt(ip) + opt(None if ua is None else pstr(ua))
            + opt(None if device is None else pstr(device)) + opt(fingerprint))


T0 = 1_767_225_600_000
ID = bytes(range(0xa0, 0xb0))
HASH = bytes(range(32))
V6 = bytes.fromhex("20010db8000000000000000000000001")
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


def redb_v1(tenant="default", subject=None, auth=None, attrs="{}", client=None, version=1,
            revoked=None) -> bytes:
    state = b"\x00" if revoked is None else b"\x01" + bytes([revoked[0]]) + zigzag(revoked[1])
    return (ID + pstr(tenant) + HASH + opt(None if subject is None else pstr(subject))
            + zigzag(T0) + zigzag(T0 + 5_000) + zigzag(1_800_000) + zigzag(T0 + 86_400_000)
            + opt(None if auth is None else zigzag(auth)) + pstr(attrs) + opt(client)
            + varint(version) + state)


write_to("records", "redb-v1-anonymous",
         b"\x01" + redb_v1(attrs='{"cart":3}', client=pclient([192, 0, 2, 7], UA)))
write_to("records", "redb-v1-tombstone",
         b"\x01" + redb_v1(subject="user-1", version=4, revoked=(1, T0 + 9_000)))
refresh = bytes([1] * 32) + opt(bytes([2] * 32)) + varint(7) + zigzag(T0 + 3_000) + zigzag(T0 + 33_000)
write_to("records", "redb-v2-pair",
         b"\x02" + redb_v1(tenant="acme", subject="user-1", auth=T0, attrs='{"role":"admin"}',
                           client=pclient(V6, "curl/8", "laptop", bytes([9] * 32)), version=3)
         + refresh)


def mstr(b) -> bytes:  # rmp's write_str_len, then the bytes
    if isinstance(b, str):
        b = b.encode()
    n = len(b)
    if n < 32:
        return bytes([0xA0 | n]) + b
    if n < 256:
        return b"\xd9" + bytes([n]) + b
    return b"\xda" + struct.pack(">H", n) + b


def redis_record(fields) -> bytes:
    """The 19 fields v ten tok sub st rat ver cat ls idle exp auth a c rc rp rg ri rgu."""
    assert len(fields) == 19
    return b"\xdc" + struct.pack(">H", 19) + b"".join(
        b"\xc2" if f is None else mstr(f) for f in fields)


def n(x: int) -> str:
    return str(x)


times = [n(T0), n(T0 + 5_000), n(1_800_000), n(T0 + 86_400_000)]
write_to("records", "redis-active", redis_record(
    ["2", "default", HASH.hex(), None, "0", None, "1", *times, None, '{"cart":3}',
     b"\x01" + pclient([192, 0, 2, 7], UA), None, None, None, None, None]))
write_to("records", "redis-pair", redis_record(
    ["2", "acme", HASH.hex(), b"user-1".hex(), "0", None, "3", *times, n(T0), '{"role":"admin"}',
     b"\x01" + pclient(V6, "curl/8", "laptop", bytes([9] * 32)),
     bytes([1] * 32).hex(), bytes([2] * 32).hex(), "7", n(T0 + 3_000), n(T0 + 33_000)]))
write_to("records", "redis-tombstone", redis_record(
    ["2", "default", HASH.hex(), b"user-1".hex(), "1", n(T0 + 9_000), "4", *times, None,
     None, None, None, None, None, None, None]))
write_to("records", "redis-key-id", ID.hex())
write_to("records", "redis-key-hash", HASH.hex())
write_to("records", "redis-key-subject", "user-1@example.com".encode().hex())
write_to("records", "postgres-client", b"\x01" + pclient(V6, UA, "phone", bytes([9] * 32)))
