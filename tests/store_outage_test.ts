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

Deno.test("[postgres] postgres.js's write after the server's FIN (EPIPE, from a deferred write) replaces the pool too", async () => {
  const client = await createPostgresClient({ url: TEST_DATABASE_URL, max: 2 });
  try {
    // What Deno's node:net raises when postgres.js's deferred write meets a socket the
    // server ended (a crash of the server under load): a rejection nobody can catch.
    const error = Object.assign(new Error("This socket has been ended by the other party"), {
      code: "EPIPE",
    });
    error.stack = `Error: ${error.message}\n    at Socket._writeAfterFIN [as write] ` +
      "(ext:deno_node/net.ts:1:10175)\n    at Immediate.nextWrite " +
      "(file:///cache/npm/registry.npmjs.org/postgres/3.4.9/src/connection.js:255:22)";
    const rejection = new PromiseRejectionEvent("unhandledrejection", {
      promise: Promise.resolve(),
      reason: error,
      cancelable: true,
    });
    globalThis.dispatchEvent(rejection);
    assert.equal(rejection.defaultPrevented, true, "the process would have ended");
    const asError = new ErrorEvent("error", { error, cancelable: true });
    globalThis.dispatchEvent(asError);
    assert.equal(asError.defaultPrevented, true, "the process would have ended");
    const other = new PromiseRejectionEvent("unhandledrejection", {
      promise: Promise.resolve(),
      reason: new Error("This socket has been ended by the other party"),
      cancelable: true,
    });
    globalThis.dispatchEvent(other);
    assert.equal(other.defaultPrevented, false, "other rejections are not hidden");
    const [row] = await client.query<{ n: number }>("select 8::int8 as n"); // the new pool
    assert.equal(row.n, 8);
  } finally {
    await client.close();
  }
});

Deno.test("[postgres] close() ends even when a connection died in the middle of a query and was not used again", async () => {
  const applicationName = `close-after-kill-${crypto.randomUUID().slice(0, 8)}`;
  const client = await createPostgresClient({ url: TEST_DATABASE_URL, max: 2, applicationName });
  const admin = await createPostgresClient({ url: TEST_DATABASE_URL, max: 1 });
  try {
    const sleeping = client.query("select pg_sleep(30)");
    const failed = sleeping.then(() => null, (error: unknown) => error);
    let killed: { pg_terminate_backend: boolean }[] = [];
    while (killed.length === 0) {
      // The backend running the sleep (it shows up once the statement has started).
      killed = await admin.query<{ pg_terminate_backend: boolean }>(
        `select pg_terminate_backend(pid) from pg_stat_activity
         where application_name = $1 and query like 'select pg_sleep%'`,
        [applicationName],
      );
    }
    assert.deepEqual(killed.map((row) => row.pg_terminate_backend), [true]);
    const error = await failed;
    assert.ok(error instanceof Error, "the query failed with the connection");
    // postgres.js 3.4.9 keeps the dead connection's query as current until the connection
    // is used again, and its end() waited for it forever (the test process's event loop
    // then ran dry: "Promise resolution is still pending").
  } finally {
    await admin.close();
    await client.close();
  }
});
