"""TLS, STLS, SASL, UTF8 and APOP against the real binary with real clients:
python3 poplib (stls, capa, utf8, AUTH through _shortcmd), curl (pop3s and
STLS), openssl s_client (-starttls pop3, old protocol versions), mpop.

What it proves: the TLS policy (1.2/1.3 only, SNI picks the tenant's
certificate, ECDSA and RSA both served, resumption, reload on SIGHUP), that
plaintext injected after STLS never runs, that cleartext logins and bearer
tokens are refused without TLS, and that every SASL mechanism logs in with
real cryptography end to end."""

import base64
import hashlib
import hmac
import json
import os
import poplib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from itest import (Conversation, Gateway, admin, crlf, deliver, dsn, new_tenant, new_user,
                   unstuff, wait_until)

CERTS = os.environ.get("POPGATE_TEST_CERT_DIR", "")
BODY = b"Subject: tls\r\n\r\n.dotted\r\nbody\r\n"


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_context(min_version=ssl.TLSVersion.TLSv1_2, max_version=None):
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.crt"))
    ctx.check_hostname = False  # the tests pick names for SNI on purpose
    ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def tls_settings(certs=CERTS):
    return {
        "tls__certificates": f"{certs}/pop-ecdsa.crt:{certs}/pop-ecdsa.key {certs}/pop-rsa.crt:{certs}/pop-rsa.key",
        "tls__sni_directory": f"{certs}/sni",
    }


class OAuthKeys:
    """An RSA key made with the openssl CLI, its JWKS, and RS256 tokens."""

    def __init__(self, directory):
        self.key = os.path.join(directory, "jwt.key")
        subprocess.run(["openssl", "genrsa", "-out", self.key, "2048"], check=True, capture_output=True)
        modulus = subprocess.run(["openssl", "rsa", "-in", self.key, "-noout", "-modulus"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        n = bytes.fromhex(modulus.split("=", 1)[1])
        self.jwks = os.path.join(directory, "jwks.json")
        with open(self.jwks, "w") as f:
            json.dump({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                                 "n": b64url(n), "e": "AQAB"}]}, f)

    def token(self, email, issuer="https://issuer.test", audience="popgate", lifetime=300):
        header = b64url(json.dumps({"alg": "RS256", "kid": "k1", "typ": "JWT"}).encode())
        now = int(time.time())
        claims = b64url(json.dumps({"iss": issuer, "aud": audience, "email": email,
                                    "iat": now, "exp": now + lifetime}).encode())
        signing_input = f"{header}.{claims}".encode()
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                                   input=signing_input, check=True, capture_output=True).stdout
        return f"{header}.{claims}.{b64url(signature)}"


class ScramClient:
    """RFC 5802 / 7677 client side, for driving the real server."""

    def __init__(self, user, password, nonce="clientnonce0123456789"):
        self.user, self.password, self.nonce = user, password, nonce
        self.first_bare = f"n={user},r={nonce}"

    def first(self):
        return "n,," + self.first_bare

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.expected_server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}"


class TlsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not CERTS or not os.path.exists(os.path.join(CERTS, "ca.crt")):
            raise unittest.SkipTest("POPGATE_TEST_CERT_DIR with the test PKI is not set (run through ctest)")
        cls.dsn = dsn()
        cls.domain = new_tenant()
        cls.login, cls.password = new_user(cls.domain)
        deliver(cls.login, BODY)
        cls.tmp = tempfile.mkdtemp(prefix="popgate-tls-")
        cls.oauth = OAuthKeys(cls.tmp)
        settings = tls_settings()
        settings.update({
            "auth__mechanisms": "USER APOP PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2",
            "auth__oauth_jwks_file": cls.oauth.jwks,
            "auth__oauth_issuer": "https://issuer.test",
            "auth__oauth_audience": "popgate",
        })
        cls.gateway = Gateway(cls.dsn, listeners=[
            "name=pop3,address=127.0.0.1:0,allow_cleartext_login=false",
            "name=pop3s,address=127.0.0.1:0,tls=implicit",
            "name=apop,address=127.0.0.1:0,apop=true,starttls=false",
        ], **settings)

    @classmethod
    def tearDownClass(cls):
        rc = cls.gateway.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError(f"popgate exited {rc}:\n{cls.gateway.log_text()}")

    def plain(self, listener="pop3"):
        return poplib.POP3("127.0.0.1", self.gateway.port_of(listener), timeout=30)

    def implicit(self, server_hostname="pop.example.test", context=None):
        return poplib.POP3_SSL("127.0.0.1", self.gateway.port_of("pop3s"), timeout=30,
                               context=context or client_context())

    # ---- CAPA and cleartext rules --------------------------------------------------

    def test_capa_before_and_after_stls(self):
        client = self.plain()
        before = client.capa()
        self.assertIn("STLS", before)
        self.assertNotIn("USER", before)  # cleartext login is off on this listener
        self.assertEqual(before["SASL"], ["SCRAM-SHA-256"])  # no PLAIN/LOGIN, no bearer in clear
        self.assertEqual(before["LOGIN-DELAY"], ["0", "USER"])
        self.assertIn("RESP-CODES", before)
        self.assertIn("AUTH-RESP-CODE", before)
        client.stls(context=client_context())
        after = client.capa()
        self.assertNotIn("STLS", after)
        self.assertIn("USER", after)
        self.assertEqual(after["SASL"], ["PLAIN", "LOGIN", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2"])
        client.quit()

    def test_cleartext_logins_refused_without_tls(self):
        conv = Conversation(self.gateway)
        self.assertEqual(conv.command(f"USER {self.login}"),
                         b"-ERR [AUTH] cleartext login not allowed on this connection; use STLS")
        self.assertEqual(conv.command("AUTH PLAIN " + b64(f"\0{self.login}\0{self.password}")),
                         b"-ERR [AUTH] cleartext login not allowed on this connection; use STLS")
        self.assertEqual(conv.command("AUTH OAUTHBEARER"),
                         b"-ERR [AUTH] bearer tokens are accepted over TLS only")
        conv.command("QUIT")

    # ---- Logins over TLS with poplib --------------------------------------------------

    def test_stls_then_user_pass(self):
        client = self.plain()
        client.stls(context=client_context())
        client.user(self.login)
        client.pass_(self.password)
        self.assertEqual(unstuff(client.retr(1)[1]), BODY)
        client.quit()

    def test_implicit_tls(self):
        client = self.implicit()
        client.user(self.login)
        client.pass_(self.password)
        self.assertEqual(client.stat()[0], 1)
        self.assertEqual(len(client.uidl()[1]), 1)
        client.quit()

    def test_sasl_plain_and_login(self):
        client = self.implicit()
        self.assertTrue(client._shortcmd("AUTH PLAIN " + b64(f"\0{self.login}\0{self.password}"))
                        .startswith(b"+OK maildrop has 1"))
        client.quit()
        client = self.implicit()
        self.assertEqual(client._shortcmd("AUTH LOGIN"), b"+ " + b64("Username:").encode())
        self.assertEqual(client._shortcmd(b64(self.login)), b"+ " + b64("Password:").encode())
        self.assertTrue(client._shortcmd(b64(self.password)).startswith(b"+OK maildrop"))
        client.quit()

    def test_sasl_scram_sha256_end_to_end(self):
        for listener in ("pop3", "pop3s"):  # SCRAM is fine even before TLS
            client = self.plain() if listener == "pop3" else self.implicit()
            scram = ScramClient(self.login, self.password)
            reply = client._shortcmd("AUTH SCRAM-SHA-256 " + b64(scram.first()))
            self.assertTrue(reply.startswith(b"+ "), reply)
            server_first = base64.b64decode(reply[2:]).decode()
            reply = client._shortcmd(b64(scram.final(server_first)))
            server_final = base64.b64decode(reply[2:]).decode()
            self.assertEqual(server_final, "v=" + base64.b64encode(scram.expected_server_signature).decode())
            self.assertTrue(client._shortcmd("").startswith(b"+OK maildrop"))
            client.quit()

    def test_sasl_scram_wrong_password(self):
        client = self.implicit()
        scram = ScramClient(self.login, "not the password")
        reply = client._shortcmd("AUTH SCRAM-SHA-256 " + b64(scram.first()))
        with self.assertRaises(poplib.error_proto) as err:
            client._shortcmd(b64(scram.final(base64.b64decode(reply[2:]).decode())))
        self.assertEqual(err.exception.args[0], b"-ERR [AUTH] invalid user name or password")
        client.quit()

    def test_sasl_cancel(self):
        client = self.implicit()
        self.assertEqual(client._shortcmd("AUTH PLAIN"), b"+ ")
        with self.assertRaises(poplib.error_proto) as err:
            client._shortcmd("*")
        self.assertEqual(err.exception.args[0], b"-ERR authentication cancelled")
        client.quit()

    def test_oauthbearer_and_xoauth2(self):
        token = self.oauth.token(self.login)
        client = self.implicit()
        msg = f"n,a={self.login},\x01auth=Bearer {token}\x01\x01"
        self.assertTrue(client._shortcmd("AUTH OAUTHBEARER " + b64(msg)).startswith(b"+OK maildrop"))
        client.quit()
        client = self.implicit()
        msg = f"user={self.login}\x01auth=Bearer {token}\x01\x01"
        self.assertTrue(client._shortcmd("AUTH XOAUTH2 " + b64(msg)).startswith(b"+OK maildrop"))
        client.quit()

    def test_expired_token_is_refused_with_an_error_challenge(self):
        token = self.oauth.token(self.login, lifetime=-3600)
        client = self.implicit()
        reply = client._shortcmd("AUTH OAUTHBEARER " + b64(f"n,,\x01auth=Bearer {token}\x01\x01"))
        self.assertTrue(reply.startswith(b"+ "))
        self.assertEqual(json.loads(base64.b64decode(reply[2:]))["status"], "invalid_token")
        with self.assertRaises(poplib.error_proto) as err:
            client._shortcmd("AQ==")
        self.assertEqual(err.exception.args[0], b"-ERR [AUTH] invalid user name or password")
        client.quit()

    def test_token_for_another_user_is_refused(self):
        other, _ = new_user(self.domain)
        token = self.oauth.token(other)
        client = self.implicit()
        reply = client._shortcmd("AUTH OAUTHBEARER " + b64(f"n,a={self.login},\x01auth=Bearer {token}\x01\x01"))
        self.assertTrue(reply.startswith(b"+ "))  # the error challenge
        with self.assertRaises(poplib.error_proto) as err:
            client._shortcmd("AQ==")
        self.assertEqual(err.exception.args[0], b"-ERR [AUTH] invalid user name or password")
        client.quit()

    def test_utf8_user_name_and_password(self):
        login = f"jürgen.{os.getpid()}@{self.domain}"
        password = "päss wört ✓"
        admin("user", "add", login, "--password-stdin", input=password + "\n")
        deliver(login, BODY)
        client = self.implicit()
        with self.assertRaises(poplib.error_proto) as err:
            client.user(login)
        self.assertTrue(err.exception.args[0].startswith(b"-ERR [UTF8]"))
        self.assertTrue(client.utf8().startswith(b"+OK"))
        client.user(login)
        self.assertTrue(client.pass_(password).startswith(b"+OK maildrop has 1"))
        client.quit()

    def test_apop(self):
        login, password = new_user(self.domain)
        admin("user", "apop", login, "--secret", "tanstaaf-" + password)
        client = self.plain("apop")
        self.assertTrue(client.welcome.startswith(b"+OK POP3 server ready <"))
        self.assertTrue(client.apop(login, "tanstaaf-" + password).startswith(b"+OK maildrop"))
        client.quit()
        client = self.plain("apop")
        with self.assertRaises(poplib.error_proto):
            client.apop(login, "wrong")
        client.quit()

    # ---- STLS injection ----------------------------------------------------------------

    def test_commands_injected_after_stls_never_run(self):
        sock = self.gateway.connect(listener="pop3")
        reader = sock.makefile("rb")
        self.assertTrue(reader.readline().startswith(b"+OK"))
        # One packet: STLS, then commands an attacker slipped in behind it.
        sock.sendall(f"STLS\r\nUSER {self.login}\r\nPASS {self.password}\r\nDELE 1\r\nQUIT\r\n".encode())
        self.assertEqual(reader.readline(), b"+OK begin TLS negotiation\r\n")
        tls = client_context().wrap_socket(sock, server_hostname="pop.example.test")
        tls_reader = tls.makefile("rb")
        tls.sendall(b"STAT\r\n")
        self.assertEqual(tls_reader.readline(), b"-ERR command not valid in this state\r\n")
        tls.sendall(b"PASS anything\r\n")
        self.assertEqual(tls_reader.readline(), b"-ERR USER first\r\n")
        tls.sendall(b"QUIT\r\n")
        tls_reader.readline()
        tls.close()
        # And the message the attacker tried to delete is still there.
        client = self.implicit()
        client.user(self.login)
        client.pass_(self.password)
        self.assertEqual(client.stat()[0], 1)
        client.quit()

    # ---- TLS policy -------------------------------------------------------------------

    def s_client(self, *args, stdin=b"QUIT\r\n"):
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.gateway.port_of('pop3s')}",
                               "-CAfile", os.path.join(CERTS, "ca.crt"), *args],
                              input=stdin, capture_output=True, timeout=30).stdout.decode(errors="replace")

    def test_tls_1_0_and_1_1_are_refused(self):
        for flag in ("-tls1", "-tls1_1"):
            out = subprocess.run(
                ["openssl", "s_client", flag, "-cipher", "DEFAULT@SECLEVEL=0", "-connect",
                 f"127.0.0.1:{self.gateway.port_of('pop3s')}"],
                input=b"", capture_output=True, timeout=30)
            text = (out.stdout + out.stderr).decode(errors="replace")
            # The server answers with a protocol_version alert: refused by it.
            self.assertIn("alert protocol version", text, flag)
            self.assertIn("Cipher is (NONE)", text, flag)

    def test_tls_1_2_and_1_3_are_served(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_context(min_version=version, max_version=version)
            client = poplib.POP3_SSL("127.0.0.1", self.gateway.port_of("pop3s"), context=ctx, timeout=30)
            self.assertEqual(client.sock.version(), {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                                     ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version])
            client.quit()

    def test_sni_selects_the_tenants_certificate(self):
        expected = {"tenant-a.test": "tenant-a.test", "mail.tenant-b.test": "*.tenant-b.test",
                    "unknown.example": "pop.example.test", None: "pop.example.test"}
        for name, cn in expected.items():
            ctx = client_context()
            with socket.create_connection(("127.0.0.1", self.gateway.port_of("pop3s")), timeout=30) as raw:
                with ctx.wrap_socket(raw, server_hostname=name) as tls:
                    subject = dict(x[0] for x in tls.getpeercert()["subject"])
                    self.assertEqual(subject["commonName"], cn, name)

    def test_ecdsa_and_rsa_certificates(self):
        rsa = self.s_client("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
        self.assertIn("Server public key is 2048 bit", rsa)
        ecdsa = self.s_client("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertIn("Server public key is 256 bit", ecdsa)

    def test_session_resumption(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_context(min_version=version, max_version=version)
            port = self.gateway.port_of("pop3s")
            with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
                tls = ctx.wrap_socket(raw, server_hostname="pop.example.test")
                reader = tls.makefile("rb")
                reader.readline()  # the greeting; TLS 1.3 tickets arrive with it
                tls.sendall(b"QUIT\r\n")
                reader.readline()
                session = tls.session
                tls.unwrap()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
                tls = ctx.wrap_socket(raw, server_hostname="pop.example.test", session=session)
                self.assertTrue(tls.session_reused, version)
                tls.close()

    # ---- Other real clients --------------------------------------------------------------

    def test_curl_pop3s_and_starttls(self):
        ca = os.path.join(CERTS, "ca.crt")
        listing = subprocess.run(["curl", "-s", "--cacert", ca, "--user", f"{self.login}:{self.password}",
                                  f"pop3s://127.0.0.1:{self.gateway.port_of('pop3s')}/"],
                                 capture_output=True, timeout=60, check=True).stdout
        self.assertEqual(listing, f"1 {len(BODY)}\r\n".encode())
        body = subprocess.run(["curl", "-s", "--ssl-reqd", "--cacert", ca, "--user",
                               f"{self.login}:{self.password}",
                               f"pop3://127.0.0.1:{self.gateway.port_of('pop3')}/1"],
                              capture_output=True, timeout=60, check=True).stdout
        self.assertEqual(body, BODY)

    def test_openssl_s_client_starttls(self):
        out = subprocess.run(["openssl", "s_client", "-quiet", "-starttls", "pop3", "-connect",
                              f"127.0.0.1:{self.gateway.port_of('pop3')}", "-CAfile",
                              os.path.join(CERTS, "ca.crt")],
                             input=f"CAPA\r\nUSER {self.login}\r\nPASS {self.password}\r\nSTAT\r\nQUIT\r\n".encode(),
                             capture_output=True, timeout=30).stdout.decode()
        self.assertIn("SASL PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2", out)
        self.assertIn(f"+OK 1 {len(BODY)}", out)

    def test_mpop_over_tls(self):
        work = tempfile.mkdtemp(prefix="popgate-mpop-", dir=self.tmp)
        rc = os.path.join(work, "mpoprc")
        with open(rc, "w") as f:
            f.write(f"""defaults
tls on
tls_trust_file {os.path.join(CERTS, 'ca.crt')}
keep on

account implicit
host 127.0.0.1
port {self.gateway.port_of('pop3s')}
tls_starttls off
user {self.login}
password {self.password}
auth plain
uidls_file {work}/uidls1
delivery mbox {work}/mbox1

account starttls
host 127.0.0.1
port {self.gateway.port_of('pop3')}
tls_starttls on
user {self.login}
password {self.password}
auth scram-sha-256
uidls_file {work}/uidls2
delivery mbox {work}/mbox2
""")
        os.chmod(rc, 0o600)
        for account in ("implicit", "starttls"):
            out = subprocess.run(["mpop", "-C", rc, account], capture_output=True, timeout=60, text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            with open(os.path.join(work, "mbox1" if account == "implicit" else "mbox2"), "rb") as f:
                mbox = f.read()
            # mpop adds a From line and a Received header, and unstuffs.
            self.assertIn(b".dotted\nbody\n", mbox.replace(b"\r\n", b"\n"))


class ReloadTest(unittest.TestCase):
    """SIGHUP reloads the certificates; running connections keep theirs."""

    def test_sighup_reloads_certificates(self):
        if not CERTS:
            raise unittest.SkipTest("POPGATE_TEST_CERT_DIR is not set (run through ctest)")
        work = tempfile.mkdtemp(prefix="popgate-reload-")
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        shutil.copy(os.path.join(CERTS, "pop-ecdsa.crt"), cert)
        shutil.copy(os.path.join(CERTS, "pop-ecdsa.key"), key)
        gateway = Gateway(dsn(), listeners=["name=pop3s,address=127.0.0.1:0,tls=implicit"],
                          tls__certificates=f"{cert}:{key}")
        try:
            def common_name():
                with socket.create_connection(("127.0.0.1", gateway.port_of("pop3s")), timeout=30) as raw:
                    with client_context().wrap_socket(raw, server_hostname="pop.example.test") as tls:
                        return dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]
            self.assertEqual(common_name(), "pop.example.test")
            shutil.copy(os.path.join(CERTS, "sni", "tenant-a.test.pem"), cert)
            shutil.copy(os.path.join(CERTS, "sni", "tenant-a.test.pem"), key)
            gateway.send_signal(signal.SIGHUP)
            wait_until(lambda: common_name() == "tenant-a.test", "the reloaded certificate to be served")
            self.assertIn("\"reloaded\"", gateway.log_text())
        finally:
            gateway.stop()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
