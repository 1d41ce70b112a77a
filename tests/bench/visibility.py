#!/usr/bin/env python3
"""Line written to the Postfix log -> visible in GET /v1/messages: the end-to-end latency of agent + API.

Appends the log lines of one message life at a time (pickup, the tag header, message-id, qmgr, an smtp delivery,
removal) to the file a running `relaywatch-agent run` follows, stamps the moment the delivery line was written,
and polls `GET /v1/messages?tag=` until the message shows up. Prints name=value figures.

    python3 tests/bench/visibility.py --api-url http://127.0.0.1:8080 --api-key rw_... --log /tmp/mail.log --count 200
"""
import argparse, json, random, string, time, urllib.request

def stamp():
    t = time.localtime()
    return time.strftime("%b %d %H:%M:%S", t)

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api-url", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--tag-header", default="X-Relaywatch-Tag")
    p.add_argument("--interval", type=float, default=0.05, help="seconds between messages")
    a = p.parse_args()
    latencies, missing = [], 0
    for i in range(a.count):
        qid = "".join(random.choice("0123456789ABCDEF") for _ in range(10))
        tag = "vis" + "".join(random.choice(string.hexdigits.lower()) for _ in range(20))
        rcpt = f"user{i}@example.org"
        s = stamp()
        lines = [
            f"{s} mail postfix/pickup[100]: {qid}: uid=0 from=<app@example.com>",
            f"{s} mail postfix/cleanup[101]: {qid}: info: header {a.tag_header}: {tag} from local; from=<app@example.com> to=<{rcpt}>: tag",
            f"{s} mail postfix/cleanup[101]: {qid}: message-id=<{tag}@example.com>",
            f"{s} mail postfix/qmgr[102]: {qid}: from=<app@example.com>, size=1500, nrcpt=1 (queue active)",
            f"{s} mail postfix/smtp[103]: {qid}: to=<{rcpt}>, relay=mx.example.org[192.0.2.25]:25, delay=0.2, delays=0.05/0.05/0.05/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as XYZ)",
            f"{s} mail postfix/qmgr[102]: {qid}: removed",
        ]
        with open(a.log, "a") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
        written = time.monotonic()
        url = f"{a.api_url}/v1/messages?tag={tag}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {a.api_key}"})
        while True:
            with urllib.request.urlopen(req) as r:
                body = json.load(r)
            if body["items"]:
                latencies.append(time.monotonic() - written)
                break
            if time.monotonic() - written > 30:
                missing += 1
                break
            time.sleep(0.02)
        time.sleep(a.interval)
    latencies.sort()
    def pct(q):
        return latencies[min(len(latencies) - 1, round((len(latencies) - 1) * q))] if latencies else float("nan")
    print(f"messages={a.count}")
    print(f"visible={len(latencies)}")
    print(f"missing_after_30s={missing}")
    print(f"visibility_p50_s={pct(0.5):.3f}")
    print(f"visibility_p99_s={pct(0.99):.3f}")
    print(f"visibility_max_s={pct(1.0):.3f}")

if __name__ == "__main__":
    main()
