/**
 * The canonical form that event hashes cover, with vectors an auditor can reuse: RFC 8785
 * examples for the JSON, and a two-event chain computed independently (Python's
 * `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` and `hashlib`).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  canonicalEventContent,
  canonicalJson,
  compareCodePoints,
  createPostgresClient,
  eventHash,
  GENESIS_HASH,
  headsHash,
  HeadsHasher,
  openEventStore,
} from "../events/mod.ts";

const DATABASE_URL = Deno.env.get("DATABASE_URL_TEST") ??
  "postgres://postgres@127.0.0.1:5432/test";

function hasPython(): boolean {
  try {
    return new Deno.Command("python3", { args: ["--version"], stdout: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

Deno.test("canonicalJson() matches the RFC 8785 §3.2.2 example", () => {
  const input = JSON.parse(
    `{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\"\\/",
      "literals": [null, true, false]}`,
  );
  assert.equal(
    canonicalJson(input),
    `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],` +
      `"string":"€$\\u000f\\nA'B\\"\\\\\\\\\\"/"}`,
  );
});

Deno.test("canonicalJson() sorts keys by UTF-16 code units (RFC 8785 §3.2.3)", () => {
  const keys = ["\u20ac", "\r", "\ufb33", "1", "\ud83d\ude00", "\u0080", "\u00f6"];
  const input = Object.fromEntries(keys.map((key) => [key, 0]));
  const sorted = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"];
  assert.equal(canonicalJson(input), `{${sorted.map((key) => `${JSON.stringify(key)}:0`)}}`);
});

Deno.test("canonicalJson() writes numbers as ECMAScript does and drops undefined", () => {
  const cases: [unknown, string][] = [
    [1e21, "1e+21"],
    [-0, "0"],
    [5e-324, "5e-324"],
    [2 ** 60, "1152921504606847000"],
    [0.1 + 0.2, "0.30000000000000004"],
    [{ b: undefined, a: [undefined] }, `{"a":[null]}`],
    [{}, "{}"],
    ["\u2028\u007f", `"\u2028\u007f"`],
  ];
  for (const [value, expected] of cases) assert.equal(canonicalJson(value), expected);
  for (const bad of [NaN, Infinity, "\ud800", 1n, () => 1]) {
    assert.throws(() => canonicalJson(bad), TypeError);
  }
});

Deno.test("eventHash() chains the documented test vector", () => {
  const first = {
    streamId: "job-1",
    streamVersion: 1,
    eventId: "00000000-0000-4000-8000-000000000001",
    type: "job.queued",
    data: { priority: 2, name: "Café ☕", tags: ["a", "b"] },
    metadata: { by: "api" },
  };
  assert.equal(
    canonicalEventContent(first),
    `["job-1",1,"00000000-0000-4000-8000-000000000001","job.queued",` +
      `{"name":"Café ☕","priority":2,"tags":["a","b"]},{"by":"api"}]`,
  );
  const h1 = eventHash(GENESIS_HASH, first);
  assert.equal(h1, "6bf4d1b05e11201fdc7a1a6eebe1d8cf26a3521fcdf9be0d35b9263d1c7a18a6");
  const h2 = eventHash(h1, {
    streamId: "job-1",
    streamVersion: 2,
    eventId: "00000000-0000-4000-8000-000000000002",
    type: "job.started",
    data: { ratio: 0.5, at: "2026-01-02T03:04:05Z" },
    metadata: {},
  });
  assert.equal(h2, "ba0b9a02d49cb70ed1780c2bfb24310f762244f602103d0e04daa7dcb7e75ddc");
  assert.throws(() => eventHash("00", first), TypeError);
});

Deno.test("headsHash() sorts stream ids by code point, whatever the input order", () => {
  const heads = [
    { streamId: "job-\uffff", version: 1, hash: GENESIS_HASH },
    { streamId: "job-\u{1f600}", version: 2, hash: GENESIS_HASH },
    { streamId: "job-a", version: 3, hash: GENESIS_HASH },
  ];
  assert.ok(compareCodePoints("\uffff", "\u{1f600}") < 0, "U+FFFF sorts before U+1F600");
  assert.ok("\uffff" > "\u{1f600}", "whereas UTF-16 order puts it after");
  assert.equal(headsHash(heads), headsHash([...heads].reverse()));
  assert.equal(headsHash([]), "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945");
});

Deno.test("headsHash() and HeadsHasher hash the README's bytes, past their 64 KiB chunks", () => {
  const heads = Array.from({ length: 3000 }, (_, i) => ({
    streamId: i % 3 === 0 ? `job-${i}-"\\\n\u0001é` : `job-${i}-\u{1f600}`,
    version: i + 1,
    hash: String(i % 10).repeat(64),
  }));
  const sorted = [...heads].sort((a, b) => compareCodePoints(a.streamId, b.streamId));
  const expected = createHash("sha256")
    .update(JSON.stringify(sorted.map((h) => [h.streamId, h.version, h.hash])), "utf8")
    .digest("hex");
  assert.equal(headsHash(heads), expected);
  const hasher = new HeadsHasher();
  for (const h of sorted) hasher.add(h.streamId, h.version, h.hash);
  assert.equal(hasher.count, 3000);
  assert.equal(hasher.digest(), expected);
  const unordered = new HeadsHasher();
  unordered.add("job-b", 1, GENESIS_HASH);
  assert.throws(() => unordered.add("job-a", 1, GENESIS_HASH), RangeError);
});

Deno.test({
  name: "audit/verify_chains.py, written from the README alone, agrees with the store",
  ignore: !hasPython(),
  async fn() {
    const schema = `audit_py_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const store = await openEventStore({ databaseUrl: DATABASE_URL, dataDir: "unused", schema });
    const sql = await createPostgresClient({ url: DATABASE_URL, schema, max: 1 });
    const check = async () => {
      const rows = await sql.query<{ line: string }>(
        `select json_build_array(stream_id, stream_version, event_id, type, data, metadata,
           encode(hash, 'hex'))::text as line
         from events order by stream_id, stream_version`,
      );
      const child = new Deno.Command("python3", {
        args: [new URL("../audit/verify_chains.py", import.meta.url).pathname],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(rows.map((r) => r.line + "\n").join("")));
      await writer.close();
      const { code, stdout, stderr } = await child.output();
      return { code, text: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
    };
    try {
      await store.append([{
        streamId: "job-\u{1f600}",
        expectedVersion: 0,
        events: [{
          type: "job.submitted",
          data: {
            a: [1e21, -0, 0.1 + 0.2, 5e-324, 2 ** 60, -1.5e-7, 1e-6, 1.7976931348623157e308],
            "\u20ac": 'tab\t quote" back\\ ctl\u0001\u001f\u007f\u2028 \u{1f600} é',
            "\ufb33": 1,
            "\u{1f600}": 2,
            "": { b: { d: 1, c: 2 }, a: [true, false, null] },
          },
          metadata: { "10": 1, "9": 2 },
        }, { type: "job.queued", data: {} }],
      }, { streamId: "job-a", expectedVersion: 0, events: [{ type: "job.queued", data: {} }] }]);
      await store.seal();
      const clean = await check();
      assert.equal(clean.code, 0, clean.text);
      assert.match(clean.text, /all chains check out/);
      await sql.query(`update events set data = '{"x": 1}' where stream_id = 'job-a'`);
      const altered = await check();
      assert.equal(altered.code, 1, altered.text);
      assert.match(altered.text, /job-a version 1: altered/);
    } finally {
      await store.close();
      await sql.query(`drop schema if exists "${schema}" cascade`);
      await sql.close();
    }
  },
});
