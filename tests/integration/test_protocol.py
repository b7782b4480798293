"""The protocol against the real binary and PostgreSQL, with python3 poplib,
curl and raw sockets: what is delivered is what comes back, byte for byte."""

import random
import socket
import subprocess
import time
import unittest

from itest import (Conversation, GatewayTest, crlf, lock_count, messages_of, pop, sha256,
                   unstuff, unstuff_wire, wait_until)

DOTTY = b"Subject: dots\nFrom: a@example.test\n\n.\n..\n.leading dot\nmiddle . dot\n.\r\nend\n"
PLAIN = b"Subject: plain\r\nFrom: b@example.test\r\n\r\nHello,\r\nworld.\r\n"
NO_FINAL_NEWLINE = b"Subject: tail\n\nno newline at the end"


class ProtocolTest(GatewayTest):

    def test_login_stat_list_uidl_top_retr_match_delivery(self):
        """Sizes, UIDLs and bodies agree with what delivery stored."""
        login, password, infos = self.user_with(DOTTY, PLAIN, NO_FINAL_NEWLINE)
        originals = [crlf(DOTTY), crlf(PLAIN), crlf(NO_FINAL_NEWLINE)]
        client = pop(self.gateway, login, password)
        count, total = client.stat()
        self.assertEqual(count, 3)
        self.assertEqual(total, sum(len(o) for o in originals))
        _, listing, _ = client.list()
        self.assertEqual(listing, [f"{i + 1} {len(o)}".encode() for i, o in enumerate(originals)])
        self.assertEqual(client.list(2), f"+OK 2 {len(originals[1])}".encode())
        _, uidls, _ = client.uidl()
        self.assertEqual(uidls, [f"{i + 1} {info['uidl']}".encode() for i, info in enumerate(infos)])
        for i, original in enumerate(originals):
            _, lines, octets = client.retr(i + 1)
            self.assertEqual(unstuff(lines), original)
            self.assertEqual(infos[i]["size"], len(original))
        _, top, _ = client.top(1, 2)
        self.assertEqual(top, [b"Subject: dots", b"From: a@example.test", b"", b".", b".."])
        _, top0, _ = client.top(2, 0)
        self.assertEqual(top0, [b"Subject: plain", b"From: b@example.test", b""])
        self.assertTrue(client.quit().startswith(b"+OK"))

    def test_read_ahead_serves_exact_bytes_in_any_order(self):
        """RETRs of small messages are answered from the read-ahead (several
        next messages fetched in one statement: popgate_body_readahead_total
        counts hits) with the exact bytes whatever the client does: in order,
        newest first, skipping around, DELE in between, a three-octet message and
        one too large to read ahead among them, TOP in the middle."""
        rng = random.Random(7)
        bodies = []
        for i in range(24):
            size = rng.choice([300, 5_000, 20_000, 40_000])
            line = f"line {i} .x\r\n.dot start\r\n".encode()
            bodies.append(f"Subject: m{i}\r\n\r\n".encode() + (line * (size // len(line) + 1))[:size] + b"\r\n")
        bodies[5] = b"x"
        bodies[11] = b"Subject: big\r\n\r\n" + (b"b" * 70 + b"\r\n") * 1_400
        login, password, _ = self.user_with(*bodies)
        originals = [crlf(b) for b in bodies]
        hits = self.gateway.metric("popgate_body_readahead_total", result="hit")
        client = pop(self.gateway, login, password)
        for n in range(1, 13):  # in order, through the empty and the big one
            _, lines, _ = client.retr(n)
            self.assertEqual(unstuff(lines), originals[n - 1], n)
        self.assertTrue(client.dele(14).startswith(b"+OK"))
        for n in (13, 15, 16, 20, 17):  # over a deleted one, a jump, a step back
            _, lines, _ = client.retr(n)
            self.assertEqual(unstuff(lines), originals[n - 1], n)
        _, top, _ = client.top(18, 0)
        self.assertEqual(top, [b"Subject: m17", b""])
        for n in (24, 23, 22, 21):  # newest first
            _, lines, _ = client.retr(n)
            self.assertEqual(unstuff(lines), originals[n - 1], n)
        self.assertTrue(client.quit().startswith(b"+OK"))
        self.assertGreater(self.gateway.metric("popgate_body_readahead_total", result="hit") - hits, 5)

    def test_wire_bytes_are_dot_stuffed(self):
        """On the wire, lines starting with '.' carry one more."""
        login, password, _ = self.user_with(DOTTY)
        conv = Conversation(self.gateway)
        conv.command(f"USER {login}")
        self.assertTrue(conv.command(f"PASS {password}").startswith(b"+OK"))
        self.assertEqual(conv.command("RETR 1"), f"+OK {len(crlf(DOTTY))} octets".encode())
        self.assertEqual(conv.multiline(), [b"Subject: dots", b"From: a@example.test", b"",
                                            b"..", b"...", b"..leading dot", b"middle . dot",
                                            b"..", b"end"])
        conv.command("QUIT")

    def test_curl_lists_and_fetches(self):
        """curl, as printed by `ops/dev.sh run`, lists and fetches."""
        login, password, _ = self.user_with(PLAIN, DOTTY)
        url = f"pop3://127.0.0.1:{self.gateway.port}/"
        listing = subprocess.run(["curl", "-s", "--user", f"{login}:{password}", url],
                                 capture_output=True, timeout=60, check=True).stdout
        self.assertEqual(listing, f"1 {len(crlf(PLAIN))}\r\n2 {len(crlf(DOTTY))}\r\n".encode())
        body = subprocess.run(["curl", "-s", "--user", f"{login}:{password}", url + "2"],
                              capture_output=True, timeout=60, check=True).stdout
        self.assertEqual(body, crlf(DOTTY))

    def test_dele_then_quit_removes_the_message(self):
        login, password, infos = self.user_with(PLAIN, DOTTY, PLAIN)
        client = pop(self.gateway, login, password)
        client.dele(2)
        self.assertIn(b"1 messages deleted", client.quit())
        remaining = [int(r[0]) for r in messages_of(login)]
        self.assertEqual(remaining, [infos[0]["message_id"], infos[2]["message_id"]])
        self.assertEqual(lock_count(login), 0)

    def test_dele_then_dropped_connection_removes_nothing(self):
        login, password, infos = self.user_with(PLAIN, DOTTY)
        conv = Conversation(self.gateway)
        conv.command(f"USER {login}")
        conv.command(f"PASS {password}")
        self.assertEqual(conv.command("DELE 1"), b"+OK message 1 deleted")
        self.assertEqual(conv.command("DELE 2"), b"+OK message 2 deleted")
        conv.close()  # no QUIT
        wait_until(lambda: lock_count(login) == 0, "the dropped session's lock to be released")
        self.assertEqual(len(messages_of(login)), 2)
        client = pop(self.gateway, login, password)
        self.assertEqual(client.stat()[0], 2)
        client.quit()

    def test_rset_unmarks(self):
        login, password, _ = self.user_with(PLAIN, PLAIN)
        client = pop(self.gateway, login, password)
        client.dele(1)
        client.dele(2)
        client.rset()
        self.assertIn(b"0 messages deleted", client.quit())
        self.assertEqual(len(messages_of(login)), 2)

    def test_pipelined_commands_in_one_packet(self):
        """Commands pipelined in one packet are answered in order."""
        login, password, _ = self.user_with(PLAIN, DOTTY)
        conv = Conversation(self.gateway)
        conv.send(f"CAPA\r\nUSER {login}\r\nPASS {password}\r\nSTAT\r\nLIST\r\nUIDL 1\r\n"
                  "NOOP\r\nRETR 1\r\nQUIT\r\n")
        self.assertEqual(conv.line(), b"+OK capability list follows")
        self.assertIn(b"PIPELINING", conv.multiline())
        self.assertEqual(conv.line(), b"+OK send PASS")
        self.assertTrue(conv.line().startswith(b"+OK maildrop has 2 messages"))
        self.assertEqual(conv.line(), f"+OK 2 {len(crlf(PLAIN)) + len(crlf(DOTTY))}".encode())
        self.assertTrue(conv.line().startswith(b"+OK 2 messages"))
        self.assertEqual(len(conv.multiline()), 2)
        self.assertTrue(conv.line().startswith(b"+OK 1 "))
        self.assertEqual(conv.line(), b"+OK")
        self.assertEqual(conv.line(), f"+OK {len(crlf(PLAIN))} octets".encode())
        self.assertEqual(unstuff_wire(conv.multiline()), crlf(PLAIN))
        self.assertTrue(conv.line().startswith(b"+OK popgate signing off"))
        self.assertTrue(conv.closed())

    def test_slow_reader_gets_the_whole_message_when_bytes_follow_quit(self):
        """A client pipelines RETR, DELE and QUIT plus more bytes, and reads
        slowly. Closing with those bytes unread would make the kernel send
        RST and drop the unsent tail of the message, after the DELE was
        committed: mail lost. The server sends FIN and drains instead."""
        body = b"Subject: tail\r\n\r\n" + (b"y" * 98 + b"\r\n") * 80000  # ~8 MiB
        login, password, _ = self.user_with(body)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        sock.settimeout(60)
        sock.connect((self.gateway.host, self.gateway.port))
        reader = sock.makefile("rb")
        self.assertTrue(reader.readline().startswith(b"+OK"))
        sock.sendall(f"USER {login}\r\nPASS {password}\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n".encode()
                     + b"NOOP\r\n" * 3000)
        time.sleep(1.0)  # let the server finish and close while we lag behind
        self.assertEqual(reader.readline(), b"+OK send PASS\r\n")
        self.assertTrue(reader.readline().startswith(b"+OK maildrop has 1"))
        self.assertEqual(reader.readline(), f"+OK {len(body)} octets\r\n".encode())
        got = []
        while True:
            line = reader.readline()
            self.assertTrue(line.endswith(b"\r\n"), f"message cut after {len(got)} lines")
            if line == b".\r\n":
                break
            got.append(line)
        self.assertEqual(sha256(b"".join(got)), sha256(body))
        self.assertEqual(reader.readline(), b"+OK message 1 deleted\r\n")
        self.assertTrue(reader.readline().startswith(b"+OK popgate signing off (1 messages"))
        sock.close()

    def test_twenty_mib_message_intact(self):
        rng = random.Random(20)
        lines = []
        size = 0
        while size < 20 * 1024 * 1024:
            line = (b"." if rng.random() < 0.1 else b"") + bytes(rng.choices(range(33, 127), k=rng.randint(0, 120)))
            lines.append(line)
            size += len(line) + 2
        body = b"Subject: big\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
        login, password, infos = self.user_with(body)
        self.assertEqual(infos[0]["size"], len(body))
        client = pop(self.gateway, login, password, timeout=120)
        self.assertEqual(client.list(1), f"+OK 1 {len(body)}".encode())
        _, got, octets = client.retr(1)
        self.assertEqual(sha256(unstuff(got)), sha256(body))
        client.quit()

    def test_uidls_are_stable_across_sessions(self):
        login, password, infos = self.user_with(PLAIN, DOTTY, PLAIN)
        first = pop(self.gateway, login, password)
        uidls = first.uidl()[1]
        first.dele(1)
        first.quit()
        second = pop(self.gateway, login, password)
        self.assertEqual(second.uidl()[1], [b"1 " + uidls[1].split()[1], b"2 " + uidls[2].split()[1]])
        second.quit()
        for info in infos:
            self.assertRegex(info["uidl"], r"^[\x21-\x7e]{1,70}$")
        self.assertEqual(len({i["uidl"] for i in infos}), 3)

    def test_wrong_password_and_unknown_user_look_alike(self):
        login, _, _ = self.user_with(PLAIN)
        for user, password in ((login, "wrong"), (f"nobody@{self.domain}", "x")):
            conv = Conversation(self.gateway)
            conv.command(f"USER {user}")
            self.assertEqual(conv.command(f"PASS {password}"),
                             b"-ERR [AUTH] invalid user name or password")
            conv.close()


if __name__ == "__main__":
    unittest.main()
