#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (committed; run
again only when a target's input format changes). Each seed is a meaningful
input in the target's format (see the comment at the top of each
*_fuzz.cc): a whole conversation, a real PROXY header, the RFC 7677 SCRAM
exchange, a JWT signed with the fuzz target's own Ed25519 key...

Crashes that libFuzzer finds are saved beside these (crash-<sha1>) once
fixed, so they replay in every build.

    python3 tests/fuzz/make_seeds.py
"""
import base64
import hashlib
import hmac
import os
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    path = os.path.join(HERE, "corpus", target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def b64(data):
    return base64.b64encode(data).decode()


def u32(v):
    return struct.pack(">I", v)


# ---------------------------------------------------------------- pop3_session
# [config] [faults] [send limit] [sizes] [cut seed: 4] client bytes

WHOLE, BYTEWISE = 0, 1
RANDOM_CUTS = 0x2468ACE2  # low bits 2: pieces chosen by a PRNG, clock moves too


def session(name, client, config=0, faults=0, send=0, sizes=2, seed=WHOLE):
    write("pop3_session", name, bytes([config, faults, send, sizes]) + u32(seed) + client)


LOGIN = b"USER alice@example.test\r\nPASS s3cret pw\r\n"
session("transaction", b"CAPA\r\n" + LOGIN +
        b"STAT\r\nLIST\r\nUIDL\r\nLIST 2\r\nUIDL 4\r\nTOP 2 1\r\nRETR 2\r\nBOGUS\r\n"
        b"DELE 1\r\nRETR 1\r\nNOOP\nRSET\r\nDELE 3\r\nQUIT\r\n")
session("transaction_bytewise", LOGIN + b"LIST\r\nRETR 3\r\nTOP 3 5\r\nDELE 4\r\nQUIT\r\n",
        config=0x20, send=7, sizes=0, seed=BYTEWISE)
session("random_cuts_and_clock", LOGIN + b"STAT\r\nRETR 3\r\nNOOP\r\nLIST\r\nNOOP\r\nQUIT\r\n",
        sizes=1, seed=RANDOM_CUTS)
session("sasl_plain_login_list", b"AUTH\r\nAUTH PLAIN " + b64(b"\0alice@example.test\0s3cret pw").encode() +
        b"\r\nRETR 3\r\n", config=0xC4)
session("sasl_login_scram", b"AUTH LOGIN\r\n" + b64(b"bob@example.test").encode() + b"\r\n" +
        b64(b"wrong").encode() + b"\r\n" +
        b"AUTH SCRAM-SHA-256 " + b64(b"n,,n=alice@example.test,r=abc").encode() + b"\r\n" +
        b64(b"c=biws,r=abcsrv,p=good").encode() + b"\r\n\r\nSTAT\r\nQUIT\r\n", config=0x04)
session("sasl_cancel_and_continuation", b"AUTH PLAIN\r\n*\r\nAUTH SCRAM-SHA-256\r\n" +
        b64(b"n,,n=alice@example.test,r=x").encode() + b"\r\n" + b64(b"c=biws,r=xsrv,p=bad").encode() +
        b"\r\nAUTH PLAIN =\r\nAUTH NOPE\r\nQUIT\r\n", config=0x04)
session("apop_capa_policy", b"CAPA\r\nAPOP bob@example.test tanstaaf" + b"0" * 24 +
        b"\r\nCAPA\r\nSTAT\r\nRETR 1\r\nQUIT\r\n", config=0x06)
session("stls_injection", b"CAPA\r\nSTLS\r\nUSER injected\r\nCAPA\r\nUSER carol@example.test\r\nPASS c\r\n"
        b"STAT\r\nQUIT\r\n", config=0x18, seed=BYTEWISE)
session("bearer", b"AUTH OAUTHBEARER " +
        b64(b"n,a=alice@example.test,\x01auth=Bearer ok:alice@example.test\x01\x01").encode() +
        b"\r\nSTAT\r\nQUIT\r\n", config=0x05)
session("bearer_error_ack", b"AUTH XOAUTH2 " +
        b64(b"user=alice@example.test\x01auth=Bearer nope\x01\x01").encode() + b"\r\n\r\n"
        b"AUTH OAUTHBEARER\r\n" + b64(b"n,,\x01auth=Bearer bad\x01\x01").encode() + b"\r\n" +
        b64(b"\x01").encode() + b"\r\n", config=0x05)
session("store_faults", LOGIN + LOGIN + LOGIN + b"RETR 3\r\nSTAT\r\n",
        faults=0x01 | 0x02 | 0x08 | (1 << 5), sizes=0)
session("update_fails", LOGIN + b"DELE 1\r\nDELE 2\r\nQUIT\r\n", faults=0x04)
session("kdf_unavailable_and_refused", LOGIN + LOGIN + b"STAT\r\n", faults=0x10, sizes=0x06)
session("in_use_and_require_tls", b"USER carol@example.test\r\nPASS c\r\nUTF8\r\n"
        b"USER b\xc3\xb6b@example.test\r\nPASS pw\r\nQUIT\r\n", sizes=0x12)
session("garbage", b"X" * 300 + b"\r\n\0\r\nUSER\r\nPASS x\r\n\rNOOP\r\nLIST\r\nretr 1\r\n" +
        b"NOOP\r\n" * 10 + b"QUIT\r\n")
session("auth_failures", b"USER alice@example.test\r\nPASS bad\r\n" * 4, sizes=0x0A)
session("shutdown_mid_retr", LOGIN + b"RETR 3\r\n", config=0x80 | 0x20, send=100, sizes=0)
session("peer_closed_after_dele", LOGIN + b"DELE 1\r\nDELE 2\r\n", config=0x40)

# ---------------------------------------------------------------- proxy
# [cut seed: 4] bytes


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


SIG = b"\r\n\r\n\0\r\nQUIT\n"


def tlv(kind, value):
    return bytes([kind]) + struct.pack(">H", len(value)) + value


def v2(command, family, addresses, tlvs=b"", with_crc=False):
    body = addresses + tlvs
    if with_crc:
        body += tlv(0x03, b"\0\0\0\0")
    header = SIG + bytes([0x20 | command, family]) + struct.pack(">H", len(body)) + body
    if with_crc:
        header = header[:-4] + struct.pack(">I", crc32c(header))
    return header


def proxy(name, data, seed=WHOLE):
    write("proxy", name, u32(seed) + data)


ipv4 = bytes([192, 0, 2, 1, 198, 51, 100, 7]) + struct.pack(">HH", 50123, 995)
ipv6 = (bytes.fromhex("20010db8000000000000000000000001") +
        bytes.fromhex("20010db8000000000000000000000002") + struct.pack(">HH", 40000, 110))
unix = b"/run/src.sock".ljust(108, b"\0") + b"/run/dst.sock".ljust(108, b"\0")
ssl = tlv(0x20, bytes([0x07]) + u32(0) + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"client.example") +
          tlv(0x23, b"TLS_AES_256_GCM_SHA384") + tlv(0x24, b"SHA256") + tlv(0x25, b"RSA2048"))

proxy("v1_tcp4", b"PROXY TCP4 192.0.2.1 198.51.100.7 50123 110\r\nCAPA\r\n")
proxy("v1_tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 995\r\n", seed=BYTEWISE)
proxy("v1_unknown", b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n")
proxy("v2_tcp4_tlvs", v2(1, 0x11, ipv4, tlv(0x02, b"mail.example.org") + tlv(0x01, b"pop3") +
                         tlv(0x05, b"unique-id-1") + tlv(0x30, b"blue") + ssl, with_crc=True) +
      b"\x16\x03\x01", seed=RANDOM_CUTS)
proxy("v2_tcp6", v2(1, 0x21, ipv6) + b"USER x\r\n")
proxy("v2_unix", v2(1, 0x31, unix), seed=BYTEWISE)
proxy("v2_local", v2(0, 0x00, b""))
proxy("v2_udp4_padding", v2(1, 0x12, ipv4, tlv(0x04, b"\0" * 16)))
proxy("not_proxy", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
proxy("v1_too_long", b"PROXY TCP4 " + b"1" * 120 + b"\r\n")
proxy("v2_bad_crc", v2(1, 0x11, ipv4, tlv(0x03, b"\0\0\0\1")))

# ---------------------------------------------------------------- sasl
# [selector] data; selector % 8 picks the decoder, selector / 8 a variant


def sasl(name, selector, data):
    write("sasl", name, bytes([selector]) + data)


sasl("base64_plain_message", 0, b"AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQgcHc=")
sasl("base64_unpadded", 0, b"YWI")
sasl("base64_bad_padding", 0, b"Y===")
sasl("base64url_hex", 1, b"eyJhbGciOiJFZERTQSJ9")
sasl("hex", 1, b"DEADbeef00")
sasl("plain_initial", 2, b"\0alice@example.test\0s3cret pw")
sasl("plain_continuation_authzid", 2 + 8, b"alice@example.test\0alice@example.test\0s3cret pw")
sasl("login", 2 + 16, b"alice@example.test\ns3cret pw")

NONCE = b"rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
sasl("scram_rfc7677", 3, b"n,,n=user,r=" + NONCE + b"\nc=biws,r=" + NONCE + SERVER_NONCE +
     b",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
sasl("scram_authzid_unknown_user", 3, b"y,a=us=3Der,n=us=2Cer,r=abc,x=ext\nc=eSws,r=abc" +
     SERVER_NONCE + b",p=AAAA")
sasl("scram_channel_binding", 3, b"p=tls-unique,,n=user,r=abc\n")

sasl("oauthbearer", 4, b"n,a=alice@example.test,\x01host=server.example.com\x01port=143\x01"
     b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01")
sasl("xoauth2", 4, b"user=alice@example.test\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBh\x01\x01")
sasl("oauthbearer_error_ack", 4, b"\x01")

# The Ed25519 key of sasl_fuzz.cc's JwtFixture: seed octets i * 7 + 1.
ED25519_SEED = bytes((i * 7 + 1) & 0xFF for i in range(32))


def sign_ed25519(message):
    der = bytes.fromhex("302e020100300506032b657004220420") + ED25519_SEED
    with tempfile.TemporaryDirectory() as tmp:
        key, msg = os.path.join(tmp, "key.der"), os.path.join(tmp, "msg")
        with open(key, "wb") as f:
            f.write(der)
        with open(msg, "wb") as f:
            f.write(message)
        return subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-keyform", "DER",
                               "-inkey", key, "-in", msg], check=True, capture_output=True).stdout


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


HEADER = b'{"alg":"EdDSA","kid":"k1","typ":"JWT"}'
CLAIMS = (b'{"iss":"https://idp.example.test/","aud":["other","popgate"],"exp":1700003600,'
          b'"nbf":1699990000,"email":"alice@example.test","email_verified":true}')
signed = b64url(HEADER) + b"." + b64url(CLAIMS)
JWT = signed + b"." + b64url(sign_ed25519(signed))
sasl("jwt_valid", 5, JWT)
sasl("jwt_alg_none", 5, b64url(b'{"alg":"none"}') + b"." + b64url(CLAIMS) + b".")
sasl("oauthbearer_valid_jwt", 4, b"n,a=alice@example.test,\x01auth=Bearer " + JWT + b"\x01\x01")
sasl("signed_claims", 6, HEADER + b"\n" + CLAIMS)
sasl("signed_claims_expired", 6, HEADER + b'\n{"iss":"https://idp.example.test/","aud":"popgate",'
     b'"exp":1600000000.5,"email":"a@b"}')
sasl("signed_claims_crit", 6, b'{"alg":"EdDSA","crit":["x"]}\n{}')

salted = hashlib.pbkdf2_hmac("sha256", b"pencil", SALT, 4096)
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
stored_key = hashlib.sha256(client_key).digest()
sasl("scram_credential", 7, ("{SCRAM-SHA-256}4096,%s,%s,%s" % (
    b64(SALT), b64(stored_key), b64(server_key))).encode())
sasl("scram_credential_bad", 7, b"{scram-sha-256}0,,AAAA,AAAA")

# ---------------------------------------------------------------- dot_stuffer
# [mode] [input-cut seed: 4] [output-window seed: 4] body; mode 0xff RETR,
# otherwise TOP with mode % 8 lines


def stuff(name, body, mode=0xFF, cut=WHOLE, window=0x80000FFF):
    write("dot_stuffer", name, bytes([mode]) + u32(cut) + u32(window) + body)


MESSAGE = (b"Subject: dots\r\nFrom: a@example.test\r\n\r\n.hidden\r\n.\r\n..\r\n"
           b"line\r\n.\r\n\r\nlast\r\n")
stuff("retr", MESSAGE)
stuff("retr_bytewise_tiny_windows", MESSAGE, cut=BYTEWISE, window=1)
stuff("top_1", MESSAGE, mode=1, cut=RANDOM_CUTS, window=5)
stuff("top_0_no_blank_line", b"Subject: x\r\nX-Y: .z\r\n.\r\n", mode=0)
stuff("bare_lf_cr_no_final_newline", b".a\n.\r\rb\r\n\n.\n..", cut=RANDOM_CUTS, window=3)
stuff("empty", b"")
stuff("top_lf_header", b"A: b\n\n.1\n2\n.3\n4\n", mode=2, cut=BYTEWISE, window=2)
