"""The Python SDK, generated from openapi/openapi.json by openapi-python-client, against a live `relaywatch serve`:
create a key, register a domain, ingest a batch, look the message up, read statistics. Every answer is checked;
any wrong one fails the run. Run by sdk/check.sh with RW_URL, RW_TENANT_ID and RW_KEY (a tenant admin key)."""

import datetime as dt
import os
import sys
import uuid

from relaywatch_client import AuthenticatedClient
from relaywatch_client.api.api_keys import create_api_key
from relaywatch_client.api.auth import me
from relaywatch_client.api.health import readyz
from relaywatch_client.api.ingest import ingest
from relaywatch_client.api.messages import get_message, list_messages
from relaywatch_client.api.sending_domains import create_sending_domain, list_sending_domains
from relaywatch_client.api.stats import get_delivery_stats
from relaywatch_client.client import Client
from relaywatch_client.models import (
    AgentInfo,
    CreatedApiKey,
    DeliveryStats,
    Identity,
    IngestBatch,
    IngestResult,
    Interval,
    MessageDetail,
    MessageList,
    NewApiKey,
    NewSendingDomain,
    Problem,
    Scope,
    SendingDomain,
)

URL, TENANT, KEY = os.environ["RW_URL"], os.environ["RW_TENANT_ID"], os.environ["RW_KEY"]
checks = 0


def check(cond, what, got=None):
    global checks
    if not cond:
        sys.exit(f"python SDK: FAILED: {what}" + (f" (got {got!r})" if got is not None else ""))
    checks += 1


admin = AuthenticatedClient(base_url=URL, token=KEY, raise_on_unexpected_status=True)

health = readyz.sync(client=Client(base_url=URL))
check(health is not None and health.status == "ready", "readyz answers ready", health)

ident = me.sync(client=admin)
check(isinstance(ident, Identity), "GET /v1/me answers an identity", ident)
check(str(ident.tenant_id) == TENANT, "the key belongs to the tenant just created", ident.tenant_id)

# 1. An ingest-only key for an agent.
created = create_api_key.sync(client=admin, body=NewApiKey(name="agent on mx1 (python sdk)", scopes=[Scope.INGEST]))
check(isinstance(created, CreatedApiKey), "POST /v1/api-keys creates a key", created)
check(created.key.startswith("rw_") and created.scopes == [Scope.INGEST], "the key is an rw_ key with scope ingest", created)
agent = AuthenticatedClient(base_url=URL, token=created.key)

# 2. A sending domain.
domain = create_sending_domain.sync(
    client=admin, body=NewSendingDomain(domain="mail.python-sdk.example", dkim_selectors=["s2024"])
)
check(isinstance(domain, SendingDomain), "POST /v1/sending-domains registers the domain", domain)
check(domain.domain == "mail.python-sdk.example" and domain.dkim_selectors == ["s2024"], "domain and selector kept", domain)
again = create_sending_domain.sync(client=admin, body=NewSendingDomain(domain="mail.python-sdk.example"))
check(isinstance(again, Problem) and again.code == "already_exists", "a second registration is 409 already_exists", again)
listed = list_sending_domains.sync(client=admin)
check([d.domain for d in listed.items] == ["mail.python-sdk.example"], "the listing holds the domain", listed)

# 3. A batch from the agent: one message to two recipients (accepted, hard bounce), another deferred.
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
tag = f"py-{uuid.uuid4().hex[:12]}"


def record(queue_id, recipient, status, dsn, reply, minutes_ago, position=0, **extra):
    r = {
        "kind": "delivery",
        "id": str(uuid.uuid4()),
        "time": (now - dt.timedelta(minutes=minutes_ago)).isoformat(),
        "host": "mx1",
        "instance": "postfix",
        "queue_id": queue_id,
        "daemon": "smtp",
        "recipient": recipient,
        "status": status,
        "dsn": dsn,
        "relay": "mx.example.org[192.0.2.25]:25",
        "delay": 1.5,
        "delays": {"before_queue": 0.1, "in_queue": 0.2, "connection": 0.7, "transmission": 0.5},
        "reply": reply,
        "reply_code": int(reply.split(" said: ")[-1][:3]),
        "position": position,
        "message_id": f"<{queue_id}@app.python-sdk.example>",
        "sender": "billing@mail.python-sdk.example",
        "size": 2048,
        "nrcpt": 2,
    }
    r.update(extra)
    return r


records = [
    record("4F1A2B3C4D", "ana@example.org", "sent", "2.0.0", "250 2.0.0 Ok: queued as 1234", 3, tag=tag),
    record("4F1A2B3C4D", "nobody@example.org", "bounced", "5.1.1",
           "host mx.example.org[192.0.2.25] said: 550 5.1.1 <nobody@example.org>: User unknown (in reply to RCPT TO command)",
           3, position=1, tag=tag,
           bounce_class={"severity": "hard", "reason": "unknown_recipient"}),
    record("5E6F7A8B9C", "bob@example.net", "deferred", "4.7.1",
           "host mx.example.net[192.0.2.26] said: 451 4.7.1 Try again later (in reply to RCPT TO command)", 2,
           tag=f"{tag}-other"),
]
batch = IngestBatch(agent=AgentInfo(host_name="mx1.python-sdk.example", version="sdk-check"), records=records)
result = ingest.sync(client=agent, body=batch)
check(isinstance(result, IngestResult), "POST /v1/ingest answers counts", result)
check((result.accepted, result.duplicate, result.rejected) == (3, 0, 0), "3 accepted, 0 duplicate, 0 rejected",
      (result.accepted, result.duplicate, result.rejected, [r.reason for r in result.rejections]))
replay = ingest.sync(client=agent, body=batch)
check((replay.accepted, replay.duplicate) == (0, 3), "the same batch again: 3 duplicates", (replay.accepted, replay.duplicate))

# The ingest key cannot read.
denied = list_messages.sync(client=agent, tag=tag)
check(isinstance(denied, Problem) and denied.status == 403 and denied.code == "insufficient_scope",
      "an ingest key cannot read messages (403 insufficient_scope)", denied)

# 4. The message by its tag, then its full trail.
page = list_messages.sync(client=admin, tag=tag)
check(isinstance(page, MessageList) and len(page.items) == 1, "one message carries the tag", page)
msg = page.items[0]
check(msg.queue_id == "4F1A2B3C4D" and msg.tag == tag, "the message found is the tagged one", msg)
statuses = sorted((r.recipient, r.status) for r in msg.recipients)
check(statuses == [("ana@example.org", "sent"), ("nobody@example.org", "bounced")], "each recipient's status", statuses)
detail = get_message.sync(msg.id, client=admin)
check(isinstance(detail, MessageDetail) and len(detail.attempts) == 2, "the trail holds both attempts", detail)
bounced = [a for a in detail.attempts if a.status == "bounced"][0]
check(bounced.dsn == "5.1.1" and bounced.reply_code == 550, "the bounce keeps its DSN and the server's reply code",
      (bounced.dsn, bounced.reply_code))
check(bounced.bounce_class is not None and bounced.bounce_class.severity == "hard", "the bounce is hard", bounced.bounce_class)
by_id = list_messages.sync(client=admin, message_id="<4F1A2B3C4D@app.python-sdk.example>")
check(len(by_id.items) == 1 and by_id.items[0].id == msg.id, "the same message by Message-ID", by_id)

# 5. Statistics over the last hour.
stats = get_delivery_stats.sync(client=admin, from_=now - dt.timedelta(hours=1), to=now + dt.timedelta(minutes=1),
                                interval=Interval.HOUR)
check(isinstance(stats, DeliveryStats), "GET /v1/stats/deliveries answers", stats)
t = stats.totals
check((t.sent, t.bounced, t.deferred, t.expired) == (1, 1, 1, 0), "sent 1, bounced 1, deferred 1",
      (t.sent, t.bounced, t.deferred, t.expired))
check(t.acceptance_rate is not None and abs(t.acceptance_rate - 0.5) < 1e-9, "acceptance rate 1/(1+1) = 0.5", t.acceptance_rate)

print(f"python SDK: {checks} checks passed against {URL}")
