// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * Organisations and roles, route by route: the table of operations in the OpenAPI document
 * (`http/openapi_document.ts`) is enumerated, so a new route cannot escape the checks. For
 * every operation behind a token: missing or wrong token → 401; each role outside its
 * access → 403, each role inside it → neither; another org's id in the path → 404; and no
 * GET answer of org A holds an id of org B. Through the real HTTP server (PGlite; the
 * side-by-side run in `orgs_side_by_side_test.ts` covers both stores).
 */
import assert from "node:assert/strict";
import { ROLES } from "../engine/mod.ts";
import { ACCESS_ROLES } from "../http/auth.ts";
import { accessOf, OPERATIONS } from "../http/openapi_document.ts";
import { pgliteBackend, startOrchestrator, type TestOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = {
  metadata: { name: "Org flow", version: "1.0.0" },
  nodes: { a: { node_id: "a", node_type: "LogNode", config: { message: "a" } } },
  connections: [],
};

/** Ids of the entities one org owns, and its tokens by role. */
interface Org {
  org_id: string;
  tokens: Record<string, string>;
  ids: {
    jobs: string;
    robots: string;
    workflows: string;
    schedules: string;
    tokens: string;
    alerts: string;
  };
  /** A provisioned robot that never connected (its token stream only). */
  provisioned: string;
  robot: RawRobot;
}

async function call(
  t: TestOrchestrator,
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(t.url + path, {
    method,
    headers,
    body: body === undefined || method === "GET" ? undefined : JSON.stringify(body),
  });
  if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
    await res.body?.cancel();
    return { status: res.status, text: "" };
  }
  return { status: res.status, text: await res.text() };
}

async function json(
  t: TestOrchestrator,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<any> {
  const res = await call(t, token, method, path, body);
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
  return res.text ? JSON.parse(res.text) : null;
}

/** Creates an org's tokens (as the system admin) and one entity of each kind. */
async function seed(t: TestOrchestrator, orgId: string): Promise<Org> {
  const tokens: Record<string, string> = {};
  let tokenId = "";
  for (const role of ROLES) {
    const issued = await json(t, t.apiToken, "POST", "/api/v1/tokens", {
      org_id: orgId,
      role,
      name: `${orgId} ${role}`,
    });
    assert.equal(issued.org_id, orgId);
    assert.equal(issued.role, role);
    tokens[role] = issued.token;
    tokenId = issued.token_id;
  }
  const admin = tokens.admin;
  const robotId = `${orgId}-robot`;
  const robot = new RawRobot(t.wsUrl, tokens.robot, robotId);
  const registered = await robot.register();
  assert.equal(registered.payload.success, true, JSON.stringify(registered.payload));
  const provisioned = (await json(t, admin, "POST", "/api/v1/robots", {
    robot_id: `${orgId}-provisioned`,
  })).robot_id;
  const workflow = await json(t, admin, "POST", "/api/v1/workflows", {
    workflow_id: `${orgId}-flow`,
    content: WORKFLOW,
    status: "published",
  });
  const schedule = await json(t, admin, "POST", "/api/v1/schedules", {
    schedule_id: `${orgId}-schedule`,
    workflow: WORKFLOW,
    frequency: "cron",
    cron_expression: "0 3 * * *",
  });
  // A job that stays queued: it needs a capability no robot has.
  const job = await json(t, tokens.operator, "POST", "/api/v1/jobs", {
    workflow: WORKFLOW,
    required_capabilities: ["nothing-has-this"],
  });
  // That job is the org's queue backlog (ALERT_QUEUE_DEPTH 0, ALERT_QUEUE_DURATION 0): an alert
  // of the org at once.
  const backlog = () =>
    t.orchestrator.alerts.list({ org_id: orgId, kind: "queue_backlog" })[0]?.alert_id;
  await t.waitUntil(() => backlog() !== undefined);
  return {
    org_id: orgId,
    tokens,
    ids: {
      jobs: job.job_id,
      robots: robotId,
      workflows: workflow.workflow_id,
      schedules: schedule.schedule_id,
      tokens: tokenId,
      alerts: backlog()!,
    },
    provisioned,
    robot,
  };
}

function pathFor(path: string, id: string): string {
  return path.replace(":id", encodeURIComponent(id)).replace(":version", "1");
}

function resourceOf(path: string): keyof Org["ids"] | null {
  return (path.match(/^\/api\/v1\/([\w-]+)\/:id/)?.[1] as keyof Org["ids"]) ?? null;
}

Deno.test("every operation of the OpenAPI table: 401 without a token, 403 for a wrong role, 404 for another org's id, lists without another org's items", async () => {
  const { store, drop } = await pgliteBackend.open();
  const t = await startOrchestrator(store, {}, undefined, {
    alerts: { kinds: ["queue_backlog"], queueDepth: 0, queueDuration: 0 },
  });
  let a: Org | null = null;
  let b: Org | null = null;
  try {
    a = await seed(t, "acme");
    b = await seed(t, "globex");
    const other = b;
    const bIds = [...Object.values(b.ids), b.provisioned, ...Object.values(b.tokens)];
    const checked: string[] = [];
    for (const op of OPERATIONS) {
      const access = accessOf(op);
      if (access === "public") continue;
      const method = op.method.toUpperCase();
      const resource = resourceOf(op.path);
      const own = resource ? pathFor(op.path, a.ids[resource] ?? "no-such-id") : op.path;
      const label = `${method} ${op.path}`;
      // No token, a wrong token, a revoked-looking token: 401.
      for (const token of [null, "wrong", "oat_" + "0".repeat(64)]) {
        const res = await call(t, token, method, own, {});
        assert.equal(res.status, 401, `${label} with token ${token}: ${res.text}`);
        assert.equal(JSON.parse(res.text).error.code, "unauthorized");
      }
      for (const role of ROLES) {
        const admitted = ACCESS_ROLES[access].includes(role) && access !== "system";
        const safe = method === "GET" || !resource; // writes to own ids would change the seed
        if (admitted && !safe) continue;
        const res = await call(t, a.tokens[role], method, own, {});
        if (admitted) {
          assert.ok(
            ![401, 403].includes(res.status),
            `${label} as ${role}: ${res.status} ${res.text}`,
          );
        } else {
          assert.equal(res.status, 403, `${label} as ${role}: ${res.status} ${res.text}`);
          assert.equal(JSON.parse(res.text).error.code, "forbidden");
        }
      }
      if (resource && access !== "system") {
        // Another org's id: 404 for a role that may call the operation (as an unknown id).
        const role = ACCESS_ROLES[access].find((r) => r !== "robot")!;
        for (
          const id of resource === "robots"
            ? [other.ids.robots, other.provisioned]
            : [other.ids[resource]]
        ) {
          const res = await call(t, a.tokens[role], method, pathFor(op.path, id), {});
          assert.equal(
            res.status,
            404,
            `${label} on ${other.org_id}'s ${id}: ${res.status} ${res.text}`,
          );
          assert.equal(JSON.parse(res.text).error.code, "not_found");
          // Exactly the answer for an id that does not exist anywhere.
          const unknown = await call(t, a.tokens[role], method, pathFor(op.path, "no-such-id"), {});
          assert.equal(unknown.status, 404, `${label} on an unknown id`);
          assert.equal(res.text.replaceAll(id, "?"), unknown.text.replaceAll("no-such-id", "?"));
        }
      }
      if (method === "GET" && access !== "system") {
        // Every read of org A, lists included: nothing of org B.
        for (const role of ACCESS_ROLES[access].filter((r) => r !== "robot")) {
          const res = await call(t, a.tokens[role], method, own);
          for (const id of bIds) {
            assert.ok(!res.text.includes(id), `${label} as ${role} shows ${other.org_id}'s ${id}`);
          }
        }
      }
      checked.push(label);
    }
    assert.ok(checked.length >= 45, `only ${checked.length} operations checked`);
    // The system admin (configured token) sees and manages every org's tokens; others do not.
    const listed = await json(t, t.apiToken, "GET", "/api/v1/tokens?org_id=globex");
    assert.equal(listed.tokens.length, ROLES.length);
    const denied = await call(t, a.tokens.admin, "GET", "/api/v1/tokens?org_id=globex");
    assert.equal(denied.status, 403);
    const foreign = await call(t, a.tokens.admin, "POST", "/api/v1/tokens", {
      org_id: "globex",
      role: "admin",
    });
    assert.equal(foreign.status, 403);
    assert.equal(JSON.parse(foreign.text).error.field, "org_id");
    // Revoked tokens stop working at once.
    const viewer = await json(t, a.tokens.admin, "POST", "/api/v1/tokens", { role: "viewer" });
    assert.equal((await call(t, viewer.token, "GET", "/api/v1/jobs")).status, 200);
    assert.equal(
      (await call(t, a.tokens.admin, "DELETE", `/api/v1/tokens/${viewer.token_id}`)).status,
      204,
    );
    assert.equal((await call(t, viewer.token, "GET", "/api/v1/jobs")).status, 401);
    // One Idempotency-Key in two orgs: two jobs, each org sees its own.
    const keyed = async (org: Org) => {
      const res = await fetch(t.url + "/api/v1/jobs", {
        method: "POST",
        headers: {
          authorization: `Bearer ${org.tokens.operator}`,
          "idempotency-key": "nightly-2026-11-29",
          "content-type": "application/json",
        },
        body: JSON.stringify({ workflow: WORKFLOW, required_capabilities: ["none"] }),
      });
      assert.equal(res.status, 201);
      return (await res.json()).job_id;
    };
    const [jobA, jobB] = [await keyed(a), await keyed(other)];
    assert.notEqual(jobA, jobB);
    assert.equal((await call(t, a.tokens.viewer, "GET", `/api/v1/jobs/${jobB}`)).status, 404);
    const me = await json(t, a.tokens.auditor, "GET", "/api/v1/auth/me");
    assert.deepEqual(me, {
      org_id: "acme",
      role: "auditor",
      token_id: me.token_id,
      system_admin: false,
    });
  } finally {
    a?.robot.kill();
    b?.robot.kill();
    await t.stop();
    await drop();
  }
});

Deno.test("tokens survive a restart: issued and revoked API tokens are folded from the log", async () => {
  const { store, reopen, drop } = await pgliteBackend.open();
  let t = await startOrchestrator(store);
  try {
    const kept = await json(t, t.apiToken, "POST", "/api/v1/tokens", {
      org_id: "acme",
      role: "operator",
    });
    const revoked = await json(t, t.apiToken, "POST", "/api/v1/tokens", {
      org_id: "acme",
      role: "operator",
    });
    await json(t, t.apiToken, "DELETE", `/api/v1/tokens/${revoked.token_id}`);
    await t.stop();
    t = await startOrchestrator(await reopen());
    assert.equal((await call(t, kept.token, "GET", "/api/v1/jobs")).status, 200);
    assert.equal((await call(t, revoked.token, "GET", "/api/v1/jobs")).status, 401);
    const events = await t.store.readStream(`api_token-${kept.token_id}`);
    assert.equal(events[0].type, "api_token.issued");
    assert.equal(events[0].data.org_id, "acme");
    assert.equal(events[0].data.role, "operator");
    assert.ok(!JSON.stringify(events).includes(kept.token), "the token itself is not stored");
  } finally {
    await t.stop();
    await drop();
  }
});

Deno.test("revoking a token ends its SSE stream and its /ws/realtime socket", async () => {
  const { store, drop } = await pgliteBackend.open();
  const t = await startOrchestrator(store);
  let socket: WebSocket | null = null;
  try {
    const viewer = await json(t, t.apiToken, "POST", "/api/v1/tokens", {
      org_id: "acme",
      role: "viewer",
    });
    const stream = await fetch(`${t.url}/api/v1/stream?token=${viewer.token}`);
    assert.equal(stream.status, 200);
    const reader = stream.body!.getReader();
    await reader.read(); // the retry line: the stream is open
    socket = new WebSocket(`${t.url.replace("http", "ws")}/ws/realtime?token=${viewer.token}`);
    const ws = socket;
    const messages: { type: string; code?: string }[] = [];
    const ready = new Promise<void>((resolve) => {
      ws.onmessage = (m) => {
        messages.push(JSON.parse(m.data));
        if (messages.at(-1)!.type === "ready") resolve();
      };
    });
    const closed = new Promise<number>((resolve) => (ws.onclose = (e) => resolve(e.code)));
    await ready;
    await json(t, t.apiToken, "DELETE", `/api/v1/tokens/${viewer.token_id}`);
    assert.equal(await closed, 4001);
    assert.ok(messages.some((m) => m.type === "error" && m.code === "unauthorized"));
    for (;;) {
      const { done } = await reader.read();
      if (done) break; // the stream ended
    }
    assert.equal((await call(t, viewer.token, "GET", "/api/v1/jobs")).status, 401);
  } finally {
    socket?.close();
    await t.stop();
    await drop();
  }
});
