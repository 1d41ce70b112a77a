// The TypeScript SDK: types generated from openapi/openapi.json by openapi-typescript, requests through openapi-fetch,
// against a live `relaywatch serve`: create a key, register a domain, ingest a batch, look the message up, read
// statistics. Type-checked with tsc --strict (a spec change that breaks this script fails the check), then run;
// every answer is checked. Run by sdk/check.sh with RW_URL, RW_TENANT_ID and RW_KEY (a tenant admin key).
import createClient from "openapi-fetch";
import { randomUUID } from "node:crypto";
import type { components, paths } from "./schema.js";

// IngestBatch.records is free-form in the spec (a record the server refuses is reported, not fatal to the batch);
// this is the agent's delivery record (crates/domain/src/wire.rs), built from the spec's parts where it has them.
interface DeliveryRecord {
  kind: "delivery"; id: string; time: string; host: string; instance?: string; queue_id: string; daemon?: string;
  recipient: string; status: string; dsn?: string; relay?: string; delay?: number;
  delays?: components["schemas"]["Delays"]; reply?: string; position: number; message_id?: string; tag?: string;
  reply_code?: number; sender?: string; size?: number; nrcpt?: number; bounce_class?: components["schemas"]["BounceClass"];
}

const URL = process.env.RW_URL!;
const TENANT = process.env.RW_TENANT_ID!;
const KEY = process.env.RW_KEY!;
let checks = 0;

function check(cond: boolean, what: string, got?: unknown): asserts cond {
  if (!cond) {
    console.error(`typescript SDK: FAILED: ${what}${got === undefined ? "" : ` (got ${JSON.stringify(got)})`}`);
    process.exit(1);
  }
  checks++;
}

const client = (key?: string) =>
  createClient<paths>({ baseUrl: URL, headers: key ? { Authorization: `Bearer ${key}` } : {} });
const admin = client(KEY);

const ready = await client().GET("/readyz");
check(ready.response.status === 200 && ready.data?.status === "ready", "readyz answers ready", ready.data);

const ident = await admin.GET("/v1/me");
check(ident.data !== undefined && ident.data.tenant_id === TENANT, "the key belongs to the tenant just created", ident.data);

// 1. An ingest-only key for an agent.
const created = await admin.POST("/v1/api-keys", { body: { name: "agent on mx1 (typescript sdk)", scopes: ["ingest"] } });
check(created.response.status === 201 && created.data !== undefined, "POST /v1/api-keys creates a key", created.error);
check(created.data.key.startsWith("rw_") && created.data.scopes.join() === "ingest", "an rw_ key with scope ingest", created.data);
const agent = client(created.data.key);

// 2. A sending domain.
const domain = await admin.POST("/v1/sending-domains", { body: { domain: "mail.ts-sdk.example", dkim_selectors: ["s2024"] } });
check(domain.response.status === 201 && domain.data?.domain === "mail.ts-sdk.example", "the domain is registered", domain.error);
const again = await admin.POST("/v1/sending-domains", { body: { domain: "mail.ts-sdk.example" } });
check(again.response.status === 409 && again.error?.code === "already_exists", "a second registration is 409", again.error);
const invalid = await admin.POST("/v1/sending-domains", { body: { domain: "not a domain" } });
check(invalid.response.status === 422 && invalid.error?.code === "validation_failed", "a bad name is 422", invalid.error);
const listed = await admin.GET("/v1/sending-domains", { params: { query: { limit: 10 } } });
check(listed.data?.items.map((d) => d.domain).join() === "mail.ts-sdk.example", "the listing holds the domain", listed.data);

// 3. A batch from the agent: one message to two recipients (accepted, hard bounce), another deferred.
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const ago = (minutes: number) => new Date(now.getTime() - minutes * 60_000).toISOString();
const tag = `ts-${randomUUID().slice(0, 12)}`;
const record = (queueId: string, recipient: string, status: string, dsn: string, reply: string, minutesAgo: number,
  extra: Partial<DeliveryRecord> = {}): DeliveryRecord => ({
  kind: "delivery", id: randomUUID(), time: ago(minutesAgo), host: "mx1", instance: "postfix", queue_id: queueId,
  daemon: "smtp", recipient, status, dsn, relay: "mx.example.org[192.0.2.25]:25", delay: 1.5,
  delays: { before_queue: 0.1, in_queue: 0.2, connection: 0.7, transmission: 0.5 }, reply,
  reply_code: Number(reply.split(" said: ").pop()!.slice(0, 3)), position: 0,
  message_id: `<${queueId}@app.ts-sdk.example>`, sender: "news@mail.ts-sdk.example", size: 4096, nrcpt: 2, ...extra,
});
const records = [
  record("7A1B2C3D4E", "carla@example.org", "sent", "2.0.0", "250 2.0.0 Ok: queued as 99", 3, { tag }),
  record("7A1B2C3D4E", "ghost@example.org", "bounced", "5.1.1",
    "host mx.example.org[192.0.2.25] said: 550 5.1.1 <ghost@example.org>: User unknown (in reply to RCPT TO command)", 3,
    { tag, position: 1, bounce_class: { severity: "hard", reason: "unknown_recipient" } }),
  record("8B2C3D4E5F", "dan@example.net", "deferred", "4.7.1",
    "host mx.example.net[192.0.2.26] said: 451 4.7.1 Try again later (in reply to RCPT TO command)", 2, { tag: `${tag}-other` }),
];
const body = { agent: { host_name: "mx1.ts-sdk.example", version: "sdk-check" }, records };
const result = await agent.POST("/v1/ingest", { body });
check(result.response.status === 200 && result.data !== undefined, "POST /v1/ingest answers counts", result.error);
check(result.data.accepted === 3 && result.data.duplicate === 0 && result.data.rejected === 0, "3 accepted", result.data);
const replay = await agent.POST("/v1/ingest", { body });
check(replay.data?.accepted === 0 && replay.data?.duplicate === 3, "the same batch again: 3 duplicates", replay.data);
const denied = await agent.GET("/v1/messages", { params: { query: { tag } } });
check(denied.response.status === 403 && denied.error?.code === "insufficient_scope", "an ingest key cannot read", denied.error);

// 4. The message by its tag, then its full trail.
const page = await admin.GET("/v1/messages", { params: { query: { tag } } });
check(page.data !== undefined && page.data.items.length === 1, "one message carries the tag", page.data);
const msg = page.data.items[0]!;
check(msg.queue_id === "7A1B2C3D4E" && msg.tag === tag, "the message found is the tagged one", msg);
const statuses = msg.recipients.map((r) => `${r.recipient}=${r.status}`).sort().join();
check(statuses === "carla@example.org=sent,ghost@example.org=bounced", "each recipient's status", statuses);
const detail = await admin.GET("/v1/messages/{id}", { params: { path: { id: msg.id } } });
check(detail.data?.attempts.length === 2, "the trail holds both attempts", detail.data);
const bounce = detail.data.attempts.find((a) => a.status === "bounced");
check(bounce?.dsn === "5.1.1" && bounce.reply_code === 550 && bounce.bounce_class?.severity === "hard",
  "the bounce keeps its DSN, reply code and class", bounce);
const missing = await admin.GET("/v1/messages/{id}", { params: { path: { id: randomUUID() } } });
check(missing.response.status === 404 && missing.error?.code === "not_found", "an unknown message is 404", missing.error);

// 5. Statistics over the last hour, grouped by recipient domain.
const stats = await admin.GET("/v1/stats/deliveries", {
  params: { query: { from: ago(60), to: new Date(now.getTime() + 60_000).toISOString(), interval: "hour", group_by: "recipient_domain" } },
});
check(stats.data !== undefined, "GET /v1/stats/deliveries answers", stats.error);
const t = stats.data.totals;
check(t.sent === 1 && t.bounced === 1 && t.deferred === 1 && t.expired === 0, "sent 1, bounced 1, deferred 1", t);
check(t.acceptance_rate === 0.5, "acceptance rate 0.5", t.acceptance_rate);
const groups = stats.data.series.map((s) => `${s.group}:${s.totals.sent}/${s.totals.bounced}/${s.totals.deferred}`).sort().join();
check(groups === "example.net:0/0/1,example.org:1/1/0", "per recipient domain", groups);

console.log(`typescript SDK: ${checks} checks passed against ${URL}`);
