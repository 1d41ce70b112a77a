#!/usr/bin/env python3
"""Checks the Relaywatch API's answers against the plan send_mail.py printed. Exit 1 on any mismatch."""
import datetime as dt, json, sys, time, urllib.request

api, key, plan_file, bounce_notices = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
plan = json.load(open(plan_file))
EXPECT = {  # local-part prefix -> (status, dsn, text in the reply)
    "ok": ("sent", "2.0.0", "250 2.0.0 Ok: queued as E2E"),
    "bad": ("bounced", "5.1.1", "User unknown"),
    "full": ("deferred", "4.2.2", "Mailbox full"),
    "grey": ("deferred", "4.7.1", "Greylisted"),
}


def get(path):
    req = urllib.request.Request(api + path, headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def problems():
    out = []
    for tag, rcpts in plan.items():
        body = get("/v1/messages?tag=" + tag)
        items = body.get("items", [])
        if len(items) != 1:
            out.append(f"tag {tag}: {len(items)} messages, expected 1")
            continue
        # By Message-ID, bare as Postfix's log has it once the agent read it, and with the header's angle brackets.
        for query in (f"{tag}@e2e.test", f"%3C{tag}@e2e.test%3E"):
            by_id = get("/v1/messages?message_id=" + query).get("items", [])
            if [m["id"] for m in by_id] != [items[0]["id"]]:
                out.append(f"tag {tag}: message_id={query} found {[m['id'] for m in by_id]}, expected {items[0]['id']}")
        seen = {r["recipient"]: r for r in items[0]["recipients"]}
        for rcpt in rcpts:
            status, dsn, text = EXPECT[next(p for p in EXPECT if rcpt.startswith(p))]
            r = seen.get(rcpt)
            if r is None:
                out.append(f"tag {tag}: no recipient {rcpt}")
                continue
            if r["status"] != status or r.get("dsn") != dsn or text not in (r.get("reply") or ""):
                out.append(f"tag {tag} {rcpt}: got {r['status']} {r.get('dsn')} {r.get('reply')!r}, "
                           f"expected {status} {dsn} ...{text}...")
            bc = r.get("bounce_class")
            if status == "bounced" and not (bc and bc.get("severity") == "hard" and bc.get("reason")):
                out.append(f"tag {tag} {rcpt}: bounce class {bc!r}, expected a hard bounce with a reason")
            if status == "sent" and bc:
                out.append(f"tag {tag} {rcpt}: a delivered recipient has bounce class {bc!r}")
        extra = set(seen) - set(rcpts)
        if extra:
            out.append(f"tag {tag}: unexpected recipients {sorted(extra)}")
    return out


want = {"sent": 0, "bounced": 0, "deferred": 0}
for rcpts in plan.values():
    for rcpt in rcpts:
        want[EXPECT[next(p for p in EXPECT if rcpt.startswith(p))][0]] += 1
want["sent"] += bounce_notices  # Postfix's bounce notices to the sender are deliveries too
fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")


def stats_problems():
    """The statistics must count every expected attempt and add up across totals, series and points."""
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    stats = get(f"/v1/stats/deliveries?from={fmt(now - dt.timedelta(hours=3))}&to={fmt(now + dt.timedelta(hours=2))}&interval=hour")
    totals = stats["totals"]
    out = [f"stats: {k} = {totals.get(k)}, expected {n}" for k, n in want.items() if totals.get(k) != n]
    for k in ("sent", "deferred", "bounced", "expired", "other"):
        series_sum = sum(s["totals"].get(k, 0) for s in stats["series"])
        # A point carries its counts beside its time (flattened).
        point_sum = sum(p.get(k, 0) for s in stats["series"] for p in s["points"])
        if not (series_sum == point_sum == totals.get(k, 0)):
            out.append(f"stats do not add up for {k}: totals {totals.get(k)}, series {series_sum}, points {point_sum}")
    return out, totals


# The bounce notices are untagged and reach the API a moment after the tagged mail: poll both checks until they hold.
deadline = time.time() + 90
totals = {}
while True:
    try:
        found = problems()
        more, totals = stats_problems()
        found += more
    except Exception as e:  # the API may still be starting
        found = [f"API: {e}"]
    if not found or time.time() > deadline:
        break
    time.sleep(1)
for p in found:
    print("MISMATCH", p)
print("stats totals:", json.dumps(totals))
print("e2e:", "FAILED" if found else "ok", f"({sum(len(r) for r in plan.values())} recipients in {len(plan)} tagged messages)")
sys.exit(1 if found else 0)
