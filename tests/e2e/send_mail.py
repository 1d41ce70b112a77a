#!/usr/bin/env python3
"""Sends the end-to-end test's tagged messages through Postfix on 127.0.0.1:25 and prints the plan as JSON:
{tag: {recipient: expected_status}}."""
import json, smtplib, sys, uuid
from email.message import EmailMessage

run = sys.argv[1]
plan = {
    "all-ok": ["ok1@example.test", "ok2@example.test"],
    "hard-bounce": ["bad1@example.test"],
    "deferred": ["full1@example.test"],
    "mixed": ["ok3@example.test", "bad2@example.test", "grey1@example.test"],
}
expected = {"ok": "sent", "bad": "bounced", "full": "deferred", "grey": "deferred"}
out = {}
with smtplib.SMTP("127.0.0.1", 25, timeout=30) as s:
    for name, rcpts in plan.items():
        tag = f"{run}-{name}-{uuid.uuid4().hex[:8]}"
        m = EmailMessage()
        m["From"] = "app@e2e.test"
        m["To"] = ", ".join(rcpts)
        m["Subject"] = f"e2e {name}"
        m["X-Relaywatch-Tag"] = tag
        # The application's own Message-ID: check.py looks each message up by it, as an operator would.
        m["Message-ID"] = f"<{tag}@e2e.test>"
        m.set_content("end-to-end test message\n")
        s.send_message(m, from_addr="app@e2e.test", to_addrs=rcpts)
        out[tag] = {r: expected[next(p for p in expected if r.startswith(p))] for r in rcpts}
print(json.dumps(out))
