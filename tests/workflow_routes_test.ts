// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * The workflow catalogue over the real HTTP server on both stores: versions, folders,
 * validation naming the node, jobs that name a stored workflow, deployments that steer
 * dispatch, and read models rebuilt from the log after a restart.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { BACKENDS, postgresBackend, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const CONTENT = JSON.parse(
  await Deno.readTextFile(new URL("./workflows/stress_task_6.json", import.meta.url)),
);
const node = (id: string) => ({ node_id: id, node_type: "LogNode", config: { message: id } });
const SMALL = {
  metadata: { name: "small" },
  nodes: { a: node("a"), b: node("b") },
  connections: [{
    source_node: "a",
    source_port: "exec_out",
    target_node: "b",
    target_port: "exec_in",
  }],
};

/** DELETE through the real server (the harness's `api` reads a JSON body; 204 has none). */
async function del(o: { url: string; apiToken: string }, path: string): Promise<number> {
  const res = await fetch(o.url + path, {
    method: "DELETE",
    headers: { authorization: `Bearer ${o.apiToken}` },
  });
  await res.body?.cancel();
  return res.status;
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] workflows: versions, folders, delete, and the same after a restart`, async () => {
    const { store, reopen, drop } = await backend.open();
    let o = await startOrchestrator(store);
    try {
      const created = await o.api("POST", "/api/v1/workflows", {
        workflow_id: "invoices",
        content: CONTENT,
        folder: "finance/invoices/",
        tags: ["billing", "billing", "nightly"],
      });
      assert.equal(created.status, 201);
      assert.equal(created.body.id, "invoices");
      assert.equal(created.body.workflow_id, "invoices");
      assert.equal(created.body.name, "Filter and Log Numbers Fixed", "name from metadata");
      assert.equal(created.body.folder, "/finance/invoices");
      assert.deepEqual(created.body.tags, ["billing", "nightly"]);
      assert.equal(created.body.version, 1);
      assert.equal(created.body.status, "draft");
      assert.equal(created.body.published_version, null);
      assert.deepEqual(created.body.content, CONTENT);
      assert.equal(typeof created.body.updated_at, "string");

      const taken = await o.api("POST", "/api/v1/workflows", {
        workflow_id: "invoices",
        content: SMALL,
      });
      assert.equal(taken.status, 409);
      assert.equal(taken.body.error.field, "workflow_id");

      const published = await o.api("PUT", "/api/v1/workflows/invoices", { status: "published" });
      assert.equal(published.status, 200);
      assert.equal(published.body.version, 2);
      assert.equal(published.body.published_version, 2);
      const same = await o.api("PUT", "/api/v1/workflows/invoices", { status: "published" });
      assert.equal(same.body.version, 2, "an unchanged save makes no version");
      const stale = await o.api("PUT", "/api/v1/workflows/invoices", {
        description: "x",
        expected_version: 1,
      });
      assert.equal(stale.status, 409);
      assert.equal(stale.body.error.code, "version_conflict");
      assert.equal(stale.body.error.actual, 2);
      const draft = await o.api("PUT", "/api/v1/workflows/invoices", {
        content: SMALL,
        status: "draft",
        expected_version: 2,
      });
      assert.equal(draft.body.version, 3);
      assert.equal(draft.body.status, "draft");
      assert.equal(draft.body.published_version, 2, "a later draft leaves the published version");

      const versions = await o.api("GET", "/api/v1/workflows/invoices/versions");
      assert.deepEqual(versions.body.versions.map((v: any) => [v.version, v.status]), [
        [1, "draft"],
        [2, "published"],
        [3, "draft"],
      ]);
      const v2 = await o.api("GET", "/api/v1/workflows/invoices/versions/2");
      assert.deepEqual(v2.body.content, CONTENT);
      assert.equal((await o.api("GET", "/api/v1/workflows/invoices/versions/9")).status, 404);
      const types = (await o.store.readStream("workflow-invoices")).map((e) => e.type);
      assert.deepEqual(types, ["workflow.created", "workflow.updated", "workflow.updated"]);

      await o.api("POST", "/api/v1/workflows", {
        workflow_id: "ledger",
        content: SMALL,
        folder: "/finance",
      });
      const hr = await o.api("POST", "/api/v1/workflows", {
        content: SMALL,
        name: "Onboarding",
        folder: "/hr",
      });
      assert.match(hr.body.workflow_id, /^[0-9a-f-]{36}$/);
      const finance = await o.api("GET", "/api/v1/workflows?folder=/finance");
      assert.deepEqual(finance.body.workflows.map((w: any) => w.workflow_id), [
        "ledger",
        "invoices",
      ]);
      assert.equal(finance.body.workflows[0].content, undefined, "lists leave content out");
      assert.deepEqual(finance.body.folders, ["/", "/finance", "/finance/invoices", "/hr"]);
      const tagged = await o.api("GET", "/api/v1/workflows?tag=nightly&status=draft");
      assert.deepEqual(tagged.body.workflows.map((w: any) => w.workflow_id), ["invoices"]);

      assert.equal(await del(o, `/api/v1/workflows/${hr.body.workflow_id}`), 204);
      assert.equal((await o.api("GET", `/api/v1/workflows/${hr.body.workflow_id}`)).status, 404);
      assert.equal(await del(o, `/api/v1/workflows/${hr.body.workflow_id}`), 404);

      const before = await o.api("GET", "/api/v1/workflows");
      const detail = await o.api("GET", "/api/v1/workflows/invoices");
      await o.stop({ keepStore: true });
      await store.close();
      o = await startOrchestrator(await reopen());
      assert.deepEqual((await o.api("GET", "/api/v1/workflows")).body, before.body);
      assert.deepEqual((await o.api("GET", "/api/v1/workflows/invoices")).body, detail.body);
    } finally {
      await o.stop();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] a job names a stored workflow and runs its published version`, async () => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store);
    try {
      await o.api("POST", "/api/v1/workflows", { workflow_id: "w", content: CONTENT });
      const unpublished = await o.api("POST", "/api/v1/jobs", { workflow_id: "w" });
      assert.equal(unpublished.status, 409);
      assert.equal(unpublished.body.error.code, "workflow_not_published");
      assert.match(unpublished.body.error.message, /no published version \(it is draft\)/);

      const tryDraft = await o.api("POST", "/api/v1/jobs", {
        workflow_id: "w",
        workflow_version: 1,
      });
      assert.equal(tryDraft.status, 201, "a named version runs whatever its status");

      await o.api("PUT", "/api/v1/workflows/w", { status: "published" });
      await o.api("PUT", "/api/v1/workflows/w", { content: SMALL, status: "draft" });
      const res = await o.api("POST", "/api/v1/jobs", { workflow_id: "w", priority: "high" });
      assert.equal(res.status, 201);
      const job = (await o.api("GET", `/api/v1/jobs/${res.body.job_id}`)).body;
      assert.equal(job.workflow_id, "w");
      assert.equal(job.workflow_version, "2");
      assert.equal(job.workflow_name, "Filter and Log Numbers Fixed");
      assert.equal(job.priority, "high");
      const [submitted] = await o.store.readStream(`job-${res.body.job_id}`);
      assert.deepEqual((submitted.data as any).workflow.content, CONTENT);
      const listed = await o.api("GET", "/api/v1/jobs?workflow_id=w");
      assert.equal(listed.body.jobs.length, 2);

      assert.equal((await o.api("POST", "/api/v1/jobs", { workflow_id: "nope" })).status, 404);
      const badVersion = await o.api("POST", "/api/v1/jobs", {
        workflow_id: "w",
        workflow_version: 9,
      });
      assert.equal(badVersion.status, 400);
      assert.equal(badVersion.body.error.field, "workflow_version");
      await o.api("PUT", "/api/v1/workflows/w", { status: "archived" });
      const archived = await o.api("POST", "/api/v1/jobs", { workflow_id: "w" });
      assert.equal(archived.status, 409);
      assert.match(archived.body.error.message, /it is archived/);
    } finally {
      await o.stop();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] deploy, dispatch to the robot holding the workflow, undeploy`, async () => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store, { loadBalancing: "least_loaded" });
    const a = new RawRobot(o.wsUrl, o.robotToken, "robot-a");
    const b = new RawRobot(o.wsUrl, o.robotToken, "robot-b");
    try {
      await a.register();
      await b.register();
      await o.api("POST", "/api/v1/workflows", {
        workflow_id: "w",
        content: SMALL,
        status: "published",
      });
      await o.api("POST", "/api/v1/workflows", { workflow_id: "d", content: SMALL });
      const unknown = await o.api("POST", "/api/v1/workflows/w/deploy", {
        robot_ids: ["robot-b", "robot-zz"],
      });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error.field, "robot_ids[1]");
      const notPublished = await o.api("POST", "/api/v1/workflows/d/deploy", {
        robot_ids: ["robot-a"],
      });
      assert.equal(notPublished.status, 409);
      assert.equal(notPublished.body.error.code, "workflow_not_published");
      assert.equal(
        (await o.api("POST", "/api/v1/workflows/nope/deploy", { robot_ids: ["robot-a"] })).status,
        404,
      );

      const deployed = await o.api("POST", "/api/v1/workflows/w/deploy", {
        robot_ids: ["robot-b"],
      });
      assert.equal(deployed.status, 200);
      assert.deepEqual(deployed.body.robots.map((r: any) => [r.robot_id, r.version, r.current]), [
        ["robot-b", 1, true],
      ]);
      assert.deepEqual((await o.api("GET", "/api/v1/workflows/w")).body.deployed_robot_ids, [
        "robot-b",
      ]);

      // Both robots are idle: least_loaded alone would pick robot-a (first by id).
      const job = await o.api("POST", "/api/v1/jobs", { workflow_id: "w" });
      const assignment = await b.next("job_assignment");
      assert.equal(assignment.payload.job_id, job.body.job_id);
      assert.equal(assignment.payload.workflow.workflow_id, "w");
      assert.equal(assignment.payload.workflow.version, "1");
      // A job of another workflow goes to robot-a as usual.
      const other = await o.api("POST", "/api/v1/jobs", { workflow: SMALL });
      assert.equal((await a.next("job_assignment")).payload.job_id, other.body.job_id);

      const undeployed = await o.api("POST", "/api/v1/workflows/w/undeploy", {});
      assert.deepEqual(undeployed.body.robots, []);
      const again = await o.api("GET", "/api/v1/workflows/w/deployment");
      assert.deepEqual(again.body, { workflow_id: "w", published_version: 1, robots: [] });
      const types = (await o.store.readStream("workflow-w")).map((e) => e.type);
      assert.deepEqual(types, ["workflow.created", "workflow.deployed", "workflow.undeployed"]);
    } finally {
      a.kill();
      b.kill();
      await o.stop();
      await drop();
    }
  });
}

const invalid: [string, unknown, string, string?][] = [
  ["no content", { name: "x" }, "content"],
  ["nodes that are not an object", { content: { nodes: [] } }, "content.nodes"],
  [
    "a node without node_type",
    { content: { nodes: { n1: { node_id: "n1", config: {} } } } },
    "content.nodes.n1.node_type",
    "n1",
  ],
  [
    "a node whose node_id differs from its key",
    { content: { nodes: { n1: { node_id: "n2", node_type: "LogNode" } } } },
    "content.nodes.n1.node_id",
    "n1",
  ],
  [
    "a connection to a node that does not exist",
    {
      content: {
        nodes: { a: node("a") },
        connections: [{
          source_node: "a",
          source_port: "exec_out",
          target_node: "ghost",
          target_port: "exec_in",
        }],
      },
    },
    "content.connections[0].target_node",
    "ghost",
  ],
  [
    "no start node",
    {
      content: {
        nodes: { a: node("a") },
        connections: [{
          source_node: "a",
          source_port: "exec_out",
          target_node: "a",
          target_port: "exec_in",
        }],
      },
    },
    "content.connections",
  ],
  [
    "too many nodes",
    {
      content: {
        nodes: Object.fromEntries(Array.from({ length: 2001 }, (_, i) => [`n${i}`, node(`n${i}`)])),
      },
    },
    "content.nodes",
  ],
  [
    "a bad settings.timeout",
    { content: { nodes: {}, settings: { timeout: -5 } } },
    "content.settings.timeout",
  ],
  ["no name anywhere", { content: { nodes: {} } }, "name"],
  ["an unknown status", { content: SMALL, status: "live" }, "status"],
  ["a folder climbing up", { content: SMALL, folder: "/a/../b" }, "folder"],
  ["tags that are not strings", { content: SMALL, tags: [1] }, "tags"],
  ["an unknown field", { content: SMALL, colour: "red" }, "colour"],
  ["a bad workflow_id", { content: SMALL, workflow_id: "a b" }, "workflow_id"],
];

Deno.test("saving a workflow validates its content and names the field and the node", async (t) => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    for (const [name, body, field, nodeId] of invalid) {
      await t.step(name, async () => {
        const res = await o.api("POST", "/api/v1/workflows", body);
        assert.equal(res.status, 400);
        assert.equal(res.body.error.code, "invalid_request");
        assert.equal(res.body.error.field, field);
        assert.equal(res.body.error.node_id, nodeId);
        if (nodeId) assert.match(res.body.error.message, new RegExp(`"${nodeId}"`));
      });
    }
    assert.deepEqual(await o.store.readAll({}), [], "nothing written");
    assert.equal((await o.api("POST", "/api/v1/workflows", "{oops")).body.error.field, "body");
    assert.equal((await o.api("PUT", "/api/v1/workflows/nope", { name: "x" })).status, 404);
    assert.equal((await o.api("GET", "/api/v1/workflows?status=live")).body.error.field, "status");
    await o.api("POST", "/api/v1/workflows", { workflow_id: "w", content: SMALL });
    const bad = await o.api("PUT", "/api/v1/workflows/w", {
      content: { nodes: { a: { node_type: "" } } },
    });
    assert.equal(bad.body.error.field, "content.nodes.a.node_type");
    assert.equal((await o.api("GET", "/api/v1/workflows/w")).body.version, 1, "nothing saved");
  } finally {
    await o.stop();
  }
});

Deno.test("a schedule naming a stored workflow submits jobs that run its published version", async () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0, 500));
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    heartbeatInterval: 600,
    heartbeatTimeout: 3600,
  }, clock);
  try {
    await o.api("POST", "/api/v1/workflows", {
      workflow_id: "nightly",
      content: CONTENT,
      status: "published",
    });
    await o.api("PUT", "/api/v1/workflows/nightly", { content: SMALL, status: "draft" });
    const created = await o.api("POST", "/api/v1/schedules", {
      schedule_id: "s",
      frequency: "cron",
      cron_expression: "* * * * * *",
      workflow_id: "nightly",
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // A schedule naming a workflow that is not stored is refused, on add and on update.
    const unknown = await o.api("POST", "/api/v1/schedules", {
      schedule_id: "ghost",
      frequency: "daily",
      workflow_id: "no-such-workflow",
    });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.field, "workflow_id");
    assert.match(unknown.body.error.message, /no-such-workflow/);
    const moved = await o.api("PATCH", "/api/v1/schedules/s", { workflow_id: "no-such" });
    assert.equal(moved.status, 400);
    assert.equal(moved.body.error.field, "workflow_id");
    assert.equal((await o.api("GET", "/api/v1/schedules/ghost")).status, 404);
    assert.equal((await o.api("GET", "/api/v1/schedules/s")).body.workflow_id, "nightly");
    clock.advance(1000);
    await o.waitUntil(() => o.orchestrator.jobs.list().jobs.length === 1);
    const [job] = o.orchestrator.jobs.list().jobs;
    assert.equal(job.workflow_id, "nightly");
    assert.equal(job.workflow_version, "1");
    const [submitted] = await o.store.readStream(`job-${job.job_id}`);
    assert.deepEqual((submitted.data as any).workflow.content, CONTENT);
  } finally {
    await o.stop();
  }
});

Deno.test("two nodes on one PostgreSQL: a workflow saved on one is seen on the other; racing saves of one version make one winner", async () => {
  const { store, reopen, drop } = await postgresBackend.open();
  const config = { sealInterval: 0 };
  const a = await startOrchestrator(store, config);
  const b = await startOrchestrator(await reopen(), config);
  const versionOn = (node: typeof a) => {
    try {
      return node.orchestrator.workflows.get("shared").version;
    } catch {
      return 0;
    }
  };
  try {
    await a.api("POST", "/api/v1/workflows", { workflow_id: "shared", content: SMALL });
    await b.waitUntil(() => versionOn(b) === 1);
    const onB = await b.api("PUT", "/api/v1/workflows/shared", {
      status: "published",
      expected_version: 1,
    });
    assert.equal(onB.status, 200);
    await a.waitUntil(() => versionOn(a) === 2);
    assert.equal((await a.api("GET", "/api/v1/workflows/shared")).body.published_version, 2);

    const race = await Promise.all([
      a.api("PUT", "/api/v1/workflows/shared", { description: "from a", expected_version: 2 }),
      b.api("PUT", "/api/v1/workflows/shared", { description: "from b", expected_version: 2 }),
    ]);
    assert.deepEqual(race.map((r) => r.status).sort(), [200, 409]);
    const updates = (await store.readStream("workflow-shared")).filter((e) =>
      e.type === "workflow.updated"
    );
    assert.equal(updates.length, 2, "one version 3, not two");
    await a.waitUntil(() => versionOn(a) === 3);
    await b.waitUntil(() => versionOn(b) === 3);
    const winner = race.find((r) => r.status === 200)!.body.description;
    assert.equal((await a.api("GET", "/api/v1/workflows/shared")).body.description, winner);
    assert.equal((await b.api("GET", "/api/v1/workflows/shared")).body.description, winner);
  } finally {
    await a.stop();
    await b.stop();
    await drop();
  }
});
