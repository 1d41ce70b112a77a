#!/usr/bin/env python3
"""SMTP sink for the Postfix end-to-end test: answers by recipient local part.

  bad*   550 5.1.1 user unknown (RCPT)         -> Postfix bounces
  full*  452 4.2.2 mailbox full (RCPT)         -> Postfix defers
  grey*  450 4.7.1 greylisted (RCPT)           -> Postfix defers
  other  250 after DATA                        -> sent
Writes one JSON line per RCPT decision to --journal. Loopback only; stops on SIGTERM.
"""
import argparse, json, socket, socketserver, threading

ANSWERS = [
    ("bad", "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"),
    ("full", "452 4.2.2 <{rcpt}>: Mailbox full, try again later"),
    ("grey", "450 4.7.1 <{rcpt}>: Greylisted, see https://example.test/grey"),
]


class Handler(socketserver.StreamRequestHandler):
    def say(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.say("220 sink.example.test ESMTP e2e sink")
        accepted = 0
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.say("250-sink.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000")
            elif verb == "MAIL":
                accepted = 0
                self.say("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpt = line.split(":", 1)[1].strip().strip("<>").split(">")[0]
                local = rcpt.split("@")[0].lower()
                answer = "250 2.1.5 Ok"
                for prefix, text in ANSWERS:
                    if local.startswith(prefix):
                        answer = text.format(rcpt=rcpt)
                if answer.startswith("250"):
                    accepted += 1
                with self.server.lock:
                    self.server.journal.write(json.dumps({"rcpt": rcpt, "answer": answer}) + "\n")
                    self.server.journal.flush()
                self.say(answer)
            elif verb == "DATA":
                if accepted == 0:
                    self.say("554 5.5.1 Error: no valid recipients")
                    continue
                self.say("354 End data with <CR><LF>.<CR><LF>")
                while True:
                    d = self.rfile.readline()
                    if not d or d in (b".\r\n", b".\n"):
                        break
                self.say("250 2.0.0 Ok: queued as E2E%06d" % (id(self) % 1000000))
            elif verb == "RSET":
                self.say("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.say("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.say("221 2.0.0 Bye")
                return
            else:
                self.say("502 5.5.2 Error: command not recognized")


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--journal", required=True)
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.lock = threading.Lock()
    srv.journal = open(a.journal, "a")
    srv.serve_forever()


if __name__ == "__main__":
    main()
