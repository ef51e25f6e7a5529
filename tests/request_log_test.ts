/**
 * The request log: every request gets an id (the caller's `X-Request-Id` or a new one),
 * returned in the answer, and one structured record; in-process through the app, then one
 * real `main.ts` process writing JSON lines to stdout.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { createLogger, Orchestrator } from "../engine/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { createApp } from "../http/mod.ts";
import { errorResponse } from "../http/api_errors.ts";
import { requestLog } from "../http/request_log.ts";

Deno.test("request log: one JSON record per request, with the caller's or a new request id", async () => {
  const store = await openEventStore({ dataDir: "memory://" });
  const orchestrator = new Orchestrator({ store, robotToken: "r" });
  const lines: string[] = [];
  try {
    await orchestrator.start();
    const app = createApp({
      orchestrator,
      apiToken: "a",
      logger: createLogger({ write: (line) => lines.push(line), now: () => 0 }),
    });
    const auth = { authorization: "Bearer a" };
    const given = await app.request("/api/v1/jobs?status=queued", {
      headers: { ...auth, "x-request-id": "trace-42" },
    });
    assert.equal(given.status, 200);
    assert.equal(given.headers.get("x-request-id"), "trace-42");
    await given.body?.cancel();

    const fresh = await app.request("/api/v1/jobs/nope", { headers: auth });
    assert.equal(fresh.status, 404);
    const freshId = fresh.headers.get("x-request-id")!;
    assert.match(freshId, /^[0-9a-f-]{36}$/);
    await fresh.body?.cancel();

    // An unusable id (a line feed, or too long) is replaced, never echoed.
    const bad = await app.request("/healthz", { headers: { "x-request-id": "x".repeat(200) } });
    assert.notEqual(bad.headers.get("x-request-id"), "x".repeat(200));
    await bad.body?.cancel();

    const unauthorized = await app.request("/api/v1/jobs");
    assert.equal(unauthorized.status, 401);
    await unauthorized.body?.cancel();

    const records = lines.map((line) => JSON.parse(line));
    assert.equal(records.length, 4, "one line per request");
    assert.deepEqual(
      records.map((r) => [r.level, r.msg, r.method, r.path, r.status, r.error_code]),
      [
        ["info", "request", "GET", "/api/v1/jobs", 200, undefined],
        ["warn", "request", "GET", "/api/v1/jobs/nope", 404, "not_found"],
        ["info", "request", "GET", "/healthz", 200, undefined],
        ["warn", "request", "GET", "/api/v1/jobs", 401, "unauthorized"],
      ],
    );
    assert.equal(records[0].request_id, "trace-42");
    assert.equal(records[1].request_id, freshId);
    assert.equal(records[2].request_id, bad.headers.get("x-request-id"));
    for (const r of records) {
      assert.equal(typeof r.duration_ms, "number");
      assert.ok(r.duration_ms >= 0);
      assert.equal(r.time, "1970-01-01T00:00:00.000Z");
    }
  } finally {
    await orchestrator.stop();
    await store.close();
  }
});

Deno.test("request log: a handler's crash is one JSON line at error level with its message, stack and request id", async () => {
  const lines: string[] = [];
  const app = new Hono();
  app.use("*", requestLog({ logger: createLogger({ write: (l) => lines.push(l) }) }));
  app.onError(errorResponse);
  app.get("/boom", () => {
    throw new Error("disk on fire");
  });
  // A sub-app with its own onError, as the route modules mount theirs.
  const sub = new Hono();
  sub.onError(errorResponse);
  sub.get("/sub/boom", () => {
    throw new TypeError("sub on fire");
  });
  app.route("/", sub);
  const quiet = console.error;
  const stderr: unknown[][] = [];
  console.error = (...args: unknown[]) => stderr.push(args);
  let res: Response;
  let subRes: Response;
  try {
    res = await app.request("/boom", { headers: { "x-request-id": "req-1" } });
    subRes = await app.request("/sub/boom", { headers: { "x-request-id": "req-2" } });
  } finally {
    console.error = quiet;
  }
  assert.equal(res.status, 500);
  assert.equal(res.headers.get("x-request-id"), "req-1");
  assert.deepEqual(await res.json(), {
    error: { code: "internal_error", message: "Internal server error" },
  });
  assert.equal(subRes.status, 500);
  await subRes.body?.cancel();
  assert.equal(lines.length, 2, "one record per request");
  for (const line of lines) assert.doesNotMatch(line, /\n/, "on one line");
  const [record, subRecord] = lines.map((l) => JSON.parse(l));
  assert.equal(record.msg, "request");
  assert.equal(record.level, "error");
  assert.equal(record.status, 500);
  assert.equal(record.error_code, "internal_error");
  assert.equal(record.error, "disk on fire");
  assert.equal(record.request_id, "req-1");
  assert.match(record.stack, /^Error: disk on fire\n {4}at /, "the stack is a field");
  assert.match(record.stack, /request_log_test\.ts/, "it names where the error was thrown");
  assert.equal(subRecord.request_id, "req-2");
  assert.equal(subRecord.error, "sub on fire");
  assert.match(subRecord.stack, /^TypeError: sub on fire\n {4}at /);
  assert.deepEqual(stderr, [], "no text stack trace besides the records");
});

Deno.test("request log: LOG_LEVEL filters and LOG_FORMAT=text writes key=value lines", () => {
  const lines: string[] = [];
  const text = createLogger({ format: "text", level: "warn", write: (l) => lines.push(l) });
  text.log("info", "request", { status: 200 });
  text.log("warn", "request", { status: 404, path: "/a b" });
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^\S+Z WARN request status=404 path="\/a b"$/);
  // A stack stays on the record's line, its line feeds escaped.
  text.log("error", "request", { status: 500, stack: "Error: x\n    at f (a.ts:1:1)" });
  assert.equal(lines[1].split("\n").length, 1);
  assert.match(lines[1], / ERROR request status=500 stack="Error: x\\n {4}at f \(a.ts:1:1\)"$/);
  lines.splice(1);
  const off = createLogger({ level: "off", write: (l) => lines.push(l) });
  off.log("error", "x");
  assert.equal(lines.length, 1);
});

Deno.test("main.ts writes one JSON request record per request to stdout (LOG_FORMAT=json)", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "orch-log-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname],
    env: {
      ORCHESTRATOR_HOST: "127.0.0.1",
      ORCHESTRATOR_PORT: "0",
      DATA_DIR: dataDir,
      ORCHESTRATOR_API_TOKEN: "log-token",
      ORCHESTRATOR_ROBOT_TOKEN: "log-robot",
      LOG_FORMAT: "json",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = stdoutLines(child.stdout);
  try {
    let url = "";
    for (;;) {
      const line = await lines.next();
      assert.ok(!line.done, "main.ts exited before it was ready");
      url ||= line.value.match(/listening on (http:\/\/[\d.]+:\d+)/)?.[1] ?? "";
      if (line.value.includes("; ready")) break;
    }
    const res = await fetch(`${url}/api/v1/robots`, {
      headers: { authorization: "Bearer log-token", "x-request-id": "from-test-1" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-request-id"), "from-test-1");
    await res.body?.cancel();
    const line = await lines.next();
    assert.ok(!line.done);
    const record = JSON.parse(line.value);
    assert.equal(record.msg, "request");
    assert.equal(record.request_id, "from-test-1");
    assert.equal(record.method, "GET");
    assert.equal(record.path, "/api/v1/robots");
    assert.equal(record.status, 200);
    assert.equal(record.level, "info");
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await lines.return(undefined);
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** The lines of a process's output, as they come. */
async function* stdoutLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
    }
  }
  if (buffer) yield buffer;
}
