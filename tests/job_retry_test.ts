// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * `POST /api/v1/jobs/:id/retry` through the real HTTP server on both stores.
 */
import assert from "node:assert/strict";
import { BACKENDS, startOrchestrator } from "./_harness.ts";

const node = (id: string) => ({ node_id: id, node_type: "LogNode", config: { message: id } });
const V1 = { metadata: { name: "retried" }, nodes: { a: node("a") }, connections: [] };
const V2 = { ...V1, nodes: { a: node("a"), b: node("b") } };

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] retrying a finished job makes a new job linked to it, same workflow version`, async () => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store);
    const retry = (id: string, key?: string) =>
      fetch(`${o.url}/api/v1/jobs/${id}/retry`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${o.apiToken}`,
          ...(key ? { "idempotency-key": key } : {}),
        },
      }).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json() as any }));
    try {
      await o.api("POST", "/api/v1/workflows", {
        workflow_id: "w",
        content: V1,
        status: "published",
      });
      const first = await o.api("POST", "/api/v1/jobs", {
        workflow_id: "w",
        priority: "critical",
        variables: { n: 7 },
        timeout: 42,
        required_capabilities: ["browser"],
        retry: { max_retries: 1 },
      });
      const original = first.body.job_id;
      const running = await retry(original);
      assert.equal(running.status, 409);
      assert.equal(running.body.error.code, "not_finished");
      assert.equal((await retry("nope")).status, 404);

      await o.api("POST", `/api/v1/jobs/${original}/cancel`);
      await o.api("PUT", "/api/v1/workflows/w", { content: V2 }); // version 2, still published
      const again = await retry(original);
      assert.equal(again.status, 201);
      assert.equal(again.body.retry_of, original);
      assert.equal(again.body.status, "queued");
      assert.notEqual(again.body.job_id, original);
      const job = (await o.api("GET", `/api/v1/jobs/${again.body.job_id}`)).body;
      const before = (await o.api("GET", `/api/v1/jobs/${original}`)).body;
      assert.equal(job.retry_of, original);
      assert.equal(before.retry_of, null);
      for (
        const field of [
          "workflow_id",
          "workflow_name",
          "workflow_version",
          "priority",
          "timeout",
          "max_retries",
        ]
      ) {
        assert.deepEqual(job[field], before[field], field);
      }
      assert.equal(job.workflow_version, "1", "the retried job's version, not the newest");
      assert.deepEqual(job.variables, { n: 7 });
      const [submitted] = await o.store.readStream(`job-${again.body.job_id}`);
      assert.equal((submitted.data as any).retry_of, original);
      assert.deepEqual((submitted.data as any).required_capabilities, ["browser"]);
      assert.deepEqual((submitted.data as any).workflow.content, V1);

      const keyed = await retry(original, "k-1");
      assert.equal(keyed.status, 201);
      const replayed = await retry(original, "k-1");
      assert.equal(replayed.status, 200);
      assert.equal(replayed.headers.get("idempotent-replayed"), "true");
      assert.equal(replayed.body.job_id, keyed.body.job_id);
      const all = await o.api("GET", "/api/v1/jobs?workflow_id=w");
      assert.equal(all.body.jobs.length, 3);
    } finally {
      await o.stop();
      await drop();
    }
  });
}
