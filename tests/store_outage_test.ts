/**
 * The engine waits out an unreachable database instead of dropping a write (issue 5,
 * item 7), and never writes an event twice when the connection dropped after the commit.
 */
import assert from "node:assert/strict";
import type { AppendResult, SqlEventStore, StreamAppend } from "../events/mod.ts";
import { createPostgresClient, isStoreUnavailable } from "../events/mod.ts";
import { postgresBackend, startOrchestrator, TEST_DATABASE_URL } from "./_harness.ts";

/** An error as postgres.js raises it when the server closed the connection. */
function connectionClosed(): Error {
  return Object.assign(new Error("write CONNECTION_CLOSED 127.0.0.1:5432"), {
    code: "CONNECTION_CLOSED",
  });
}

Deno.test("isStoreUnavailable() tells connection failures from bad requests", () => {
  const cases: [unknown, boolean][] = [
    [connectionClosed(), true],
    [Object.assign(new Error("terminating connection"), { code: "57P01" }), true],
    [Object.assign(new Error("the database system is starting up"), { code: "57P03" }), true],
    [Object.assign(new Error("role is not permitted to log in"), { code: "28000" }), true],
    [Object.assign(new Error("connection failure"), { code: "08006" }), true],
    [Object.assign(new Error("refused"), { name: "ConnectionRefused" }), true],
    [new Error("wrapped", { cause: connectionClosed() }), true],
    [Object.assign(new Error("unique violation"), { code: "23505" }), false],
    [Object.assign(new Error("invalid text for jsonb"), { code: "22P05" }), false],
    [new TypeError("bad event"), false],
    ["CONNECTION_CLOSED", false],
  ];
  for (const [error, expected] of cases) {
    assert.equal(isStoreUnavailable(error), expected, String(error));
  }
});

Deno.test("[postgres] an append that lost its connection is sent again; one committed before the drop is not written twice", async () => {
  const { store, drop } = await postgresBackend.open();
  // The first two appends fail before reaching the server; the third is committed but its
  // answer is lost (the connection drops after COMMIT); then the server is back.
  const plan = ["fail", "fail", "commit-then-fail"];
  const calls: string[] = [];
  const flaky: SqlEventStore = Object.assign(Object.create(store), {
    async append(writes: StreamAppend[]): Promise<AppendResult> {
      const step = plan.shift() ?? "pass";
      calls.push(step);
      if (step === "fail") throw connectionClosed();
      const result = await store.append(writes);
      if (step === "commit-then-fail") throw connectionClosed();
      return result;
    },
  });
  const o = await startOrchestrator(flaky);
  try {
    const res = await o.api("POST", "/api/v1/jobs", { workflow: { nodes: {}, connections: [] } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(calls, ["fail", "fail", "commit-then-fail", "pass"]);
    const events = await store.readStream(`job-${res.body.job_id}`);
    assert.deepEqual(events.map((e) => e.type), ["job.submitted", "job.queued"]);
    assert.equal(o.orchestrator.core.storeFailure, null);
    assert.equal((await o.waitForJob(res.body.job_id, ["queued"])).status, "queued");
  } finally {
    await o.stop();
    await drop();
  }
});

Deno.test("[postgres] postgres.js's uncatchable write on a closed socket replaces the pool instead of ending the process", async () => {
  const client = await createPostgresClient({ url: TEST_DATABASE_URL, max: 2 });
  const channel = `faults_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  let listening = Promise.withResolvers<void>();
  const heard = Promise.withResolvers<string>();
  const unlisten = await client.listen!(channel, (payload) => heard.resolve(payload), {
    onListen: () => listening.resolve(),
  });
  try {
    await listening.promise;
    listening = Promise.withResolvers<void>();
    // What postgres.js 3.4.9 throws from a setImmediate (porsager/postgres#1154).
    const error = new TypeError("Cannot read properties of null (reading 'write')");
    error.stack = `${error.message}\n    at Immediate.nextWrite ` +
      "(file:///cache/npm/registry.npmjs.org/postgres/3.4.9/src/connection.js:255:22)";
    const event = new ErrorEvent("error", { error, cancelable: true });
    globalThis.dispatchEvent(event);
    assert.equal(event.defaultPrevented, true, "the process would have ended");
    const other = new ErrorEvent("error", { error: new TypeError("x"), cancelable: true });
    globalThis.dispatchEvent(other);
    assert.equal(other.defaultPrevented, false, "other uncaught errors are not hidden");

    const [row] = await client.query<{ n: number }>("select 7::int8 as n"); // the new pool
    assert.equal(row.n, 7);
    await listening.promise; // the LISTEN moved to the new pool
    await client.query("select pg_notify($1, 'after')", [channel]);
    assert.equal(await heard.promise, "after");
  } finally {
    await unlisten();
    await client.close();
  }
});
