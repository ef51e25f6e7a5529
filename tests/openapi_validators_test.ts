// deno-lint-ignore-file no-explicit-any -- JSON bodies and the OpenAPI document as parsed JSON
/**
 * The request validators are the OpenAPI document's request schemas (`http/validation.ts`):
 * what the document says about a body or a query is what the route enforces, unknown
 * fields are refused everywhere, and every error is `{error: {code, message, field?}}`.
 */
import assert from "node:assert/strict";
import { openEventStore } from "../events/mod.ts";
import { openApiDocument, OPERATIONS } from "../http/openapi_document.ts";
import { STRATEGIES } from "../engine/mod.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";

const SMALL = { nodes: { a: { node_id: "a", node_type: "StartNode", config: {} } } };

Deno.test("the document's SubmitJob is the validator's: closed, with the validator's enums and limits", () => {
  const doc: any = openApiDocument();
  const submit = doc.components.schemas.SubmitJob;
  assert.equal(submit.additionalProperties, false);
  assert.deepEqual(submit.properties.load_balancing.anyOf[0].enum, [...STRATEGIES]);
  assert.equal(submit.properties.workflow.$ref, "#/components/schemas/WorkflowContent");
  assert.equal(submit.properties.timeout.maximum, 7 * 24 * 3600);
  assert.equal(submit.$id, undefined);
  const list = doc.paths["/api/v1/jobs"].get.parameters;
  const status = list.find((p: any) => p.name === "status");
  assert.ok(status.schema.enum.includes("queued"));
  const after = list.find((p: any) => p.name === "created_after");
  assert.equal(after.description, "RFC 3339");
  assert.equal(after.schema.format, "date-time");
  const wait = doc.paths["/api/v1/events"].get.parameters.find((p: any) => p.name === "wait");
  assert.deepEqual(wait.schema, { type: "integer", minimum: 0, maximum: 30 });
});

Deno.test("POST /api/v1/jobs checks the whole body before it resolves a stored workflow", async (t) => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    const created = await o.api("POST", "/api/v1/workflows", {
      workflow_id: "w",
      name: "w",
      content: SMALL,
      status: "published",
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const cases: [string, unknown, number, string | undefined][] = [
      [
        "an unknown workflow and a bad priority",
        { workflow_id: "nope", priority: 9 },
        400,
        "priority",
      ],
      ["a known workflow and an unknown field", { workflow_id: "w", priorty: 2 }, 400, "priorty"],
      [
        "an unknown workflow and a bad variable",
        { workflow_id: "nope", variables: 1 },
        400,
        "variables",
      ],
      [
        "a bad workflow_version",
        { workflow_id: "w", workflow_version: 0 },
        400,
        "workflow_version",
      ],
      [
        "workflow and workflow_id together",
        { workflow_id: "w", workflow: SMALL },
        400,
        "workflow_id",
      ],
      ["neither workflow nor workflow_id", { priority: 1 }, 400, "workflow"],
      [
        "a bad retry field",
        { workflow: SMALL, retry: { max_retries: -1 } },
        400,
        "retry.max_retries",
      ],
      ["an unknown retry field", { workflow: SMALL, retry: { tries: 3 } }, 400, "retry.tries"],
      ["an unknown workflow, body otherwise fine", { workflow_id: "nope" }, 404, undefined],
    ];
    for (const [name, body, status, field] of cases) {
      await t.step(name, async () => {
        const res = await o.api("POST", "/api/v1/jobs", body);
        assert.equal(res.status, status, JSON.stringify(res.body));
        assert.equal(res.body.error.field, field);
        assert.equal(typeof res.body.error.message, "string");
        if (field) assert.match(res.body.error.message, new RegExp(field.replace(/\./g, "\\.")));
      });
    }
    const ok = await o.api("POST", "/api/v1/jobs", { workflow_id: "w", priority: "high" });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const job = await o.api("GET", `/api/v1/jobs/${ok.body.job_id}`);
    assert.equal(job.body.workflow_id, "w");
    assert.equal(job.body.priority, "high");
  } finally {
    await o.stop();
  }
});

Deno.test("a node at fault in an inline workflow is named as field and node_id", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    const res = await o.api("POST", "/api/v1/jobs", {
      workflow: { nodes: { n1: { node_id: "n1", node_type: 5 } } },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.field, "workflow.nodes.n1.node_type");
    assert.equal(res.body.error.node_id, "n1");
    assert.match(res.body.error.message, /"n1"/);
    const bare = await o.api("POST", "/api/v1/jobs", { nodes: { n2: { node_type: "" } } });
    assert.equal(bare.status, 400);
    assert.equal(bare.body.error.field, "workflow.nodes.n2.node_type");
    assert.equal(bare.body.error.node_id, "n2");
  } finally {
    await o.stop();
  }
});

Deno.test("a schedule's timezone must be an IANA zone name, not a fixed offset", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    for (const timezone of ["+05:30", "-08:00", "Nowhere/City"]) {
      const res = await o.api("POST", "/api/v1/schedules", {
        workflow: SMALL,
        cron_expression: "0 9 * * *",
        timezone,
      });
      assert.equal(res.status, 400, timezone);
      assert.equal(res.body.error.field, "timezone");
      assert.match(res.body.error.message, /IANA zone/);
    }
    const ok = await o.api("POST", "/api/v1/schedules", {
      schedule_id: "s",
      workflow: SMALL,
      cron_expression: "0 9 * * *",
      timezone: "Asia/Kolkata",
    });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const patch = await o.api("PATCH", "/api/v1/schedules/s", { timezone: "+05:30" });
    assert.equal(patch.status, 400);
    assert.equal(patch.body.error.field, "timezone");
    assert.match(patch.body.error.message, /not a fixed offset/);
    assert.equal((await o.api("GET", "/api/v1/schedules/s")).body.timezone, "Asia/Kolkata");
  } finally {
    await o.stop();
  }
});

Deno.test("every operation with a JSON body refuses an unknown field, naming it", async () => {
  const doc: any = openApiDocument();
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    const made = [
      await o.api("POST", "/api/v1/workflows", {
        workflow_id: "w",
        name: "w",
        content: SMALL,
        status: "published",
      }),
      await o.api("POST", "/api/v1/schedules", {
        schedule_id: "s",
        workflow: SMALL,
        cron_expression: "0 9 * * *",
      }),
      await o.api("POST", "/api/v1/robots", { robot_id: "r1" }),
      await o.api("POST", "/api/v1/jobs", { workflow: SMALL }),
      await o.api("POST", "/api/v1/tokens", { role: "viewer" }),
    ];
    for (const res of made) assert.equal(res.status, 201, JSON.stringify(res.body));
    const ids: Record<string, string> = {
      workflows: "w",
      schedules: "s",
      robots: "r1",
      jobs: made[3].body.job_id,
      tokens: made[4].body.token_id,
    };
    let checked = 0;
    for (const op of OPERATIONS) {
      if (op.method === "get" || !op.path.startsWith("/api/")) continue;
      const resource = op.path.match(/^\/api\/v1\/([\w-]+)\/:id/)?.[1];
      if (resource && !(resource in ids)) continue; // no such entity made here (alerts)
      const path = op.path.replace(":id", ids[resource ?? ""] ?? "").replace(":version", "1");
      const res = await o.api(op.method.toUpperCase(), path, { zz_unknown: 1 });
      assert.equal(res.status, 400, `${op.method} ${op.path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, "invalid_request");
      assert.equal(res.body.error.field, "zz_unknown", `${op.method} ${op.path}`);
      assert.match(res.body.error.message, /unknown field zz_unknown/);
      // ...and documents that it can answer 400.
      const documented = doc.paths[op.path.replace(/:(\w+)/g, "{$1}")][op.method].responses;
      assert.ok(documented["400"], `${op.method} ${op.path} does not document 400`);
      checked++;
    }
    assert.ok(checked >= 20, `only ${checked} operations checked`);
    // Nested objects are closed too.
    const nested = await o.api("POST", "/api/v1/jobs", { workflow: SMALL, retry: { tries: 1 } });
    assert.equal(nested.body.error.field, "retry.tries");
    // A missing required field next to an unknown one: the unknown one is named first.
    const typo = await o.api("POST", "/api/v1/tokens", { rol: "viewer" });
    assert.equal(typo.body.error.field, "rol");
    // Robot pause/resume and other bodiless operations take an empty body or {}.
    assert.equal((await o.api("POST", "/api/v1/robots/r1/token", {})).status, 201);
  } finally {
    await o.stop();
  }
});

Deno.test("every operation that reads a body refuses another Content-Type with 415 naming it", async () => {
  const doc: any = openApiDocument();
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  const send = async (method: string, path: string, body: string, type?: string) => {
    const headers: Record<string, string> = { authorization: `Bearer ${o.apiToken}` };
    if (type !== undefined) headers["content-type"] = type;
    // A Uint8Array body: fetch adds no Content-Type of its own.
    const res = await fetch(o.url + path, {
      method,
      headers,
      body: new TextEncoder().encode(body),
    });
    return { status: res.status, body: await res.json() };
  };
  try {
    let checked = 0;
    for (const op of OPERATIONS) {
      if (op.method === "get" || !op.path.startsWith("/api/")) continue;
      const path = op.path.replace(/:\w+/g, "nope");
      for (const type of ["text/plain;charset=UTF-8", "multipart/form-data; boundary=x"]) {
        const res = await send(op.method.toUpperCase(), path, "{}", type);
        assert.equal(
          res.status,
          415,
          `${op.method} ${op.path} ${type}: ${JSON.stringify(res.body)}`,
        );
        assert.deepEqual(res.body.error.code, "unsupported_media_type");
        assert.deepEqual(res.body.error.field, "Content-Type");
        assert.match(res.body.error.message, new RegExp(`got "${type.replace("+", "\\+")}"`));
      }
      const documented = doc.paths[op.path.replace(/:(\w+)/g, "{$1}")][op.method].responses;
      assert.ok(documented["415"], `${op.method} ${op.path} does not document 415`);
      checked++;
    }
    assert.ok(checked >= 20, `only ${checked} operations checked`);
    // JSON types with a UTF-8 charset, no Content-Type, and what the README's curl example
    // sends (`curl -d` without `-H`: application/x-www-form-urlencoded) are read as JSON.
    const job = JSON.stringify({ workflow: SMALL, priority: "high" });
    for (
      const type of [
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        undefined,
        "application/x-www-form-urlencoded",
      ]
    ) {
      const res = await send("POST", "/api/v1/jobs", job, type);
      assert.equal(res.status, 201, `${type}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.status, "queued");
    }
    // A charset other than UTF-8 is refused (JSON between systems is UTF-8, RFC 8259).
    const latin1 = await send("POST", "/api/v1/jobs", job, "application/json; charset=iso-8859-1");
    assert.equal(latin1.status, 415);
    // The 401 of a missing token still comes first.
    const anonymous = await fetch(o.url + "/api/v1/jobs", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: job,
    });
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
  } finally {
    await o.stop();
  }
});

Deno.test("a known path called with a method it does not have answers 405 with Allow", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    const cases: [string, string, string][] = [
      ["DELETE", "/api/v1/jobs", "POST, GET, HEAD"],
      ["PUT", "/api/v1/jobs/abc", "GET, HEAD"],
      ["GET", "/api/v1/jobs/abc/cancel", "POST"],
      ["PATCH", "/api/v1/workflows/w", "GET, HEAD, PUT, DELETE"],
      ["POST", "/healthz", "GET, HEAD"],
      ["POST", "/api/v1/openapi.json", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(o.url + path, {
        method,
        headers: { authorization: `Bearer ${o.apiToken}` },
      });
      const body = await res.json();
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
      assert.equal(body.error.code, "method_not_allowed");
      assert.match(body.error.message, new RegExp(`${method} is not allowed`));
    }
    // An unknown path is still 404.
    const unknown = await o.api("GET", "/api/v1/nothing-here");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, "not_found");
  } finally {
    await o.stop();
  }
});

Deno.test("a workflow version in the path is validated by the schema the document shows", async () => {
  const doc: any = openApiDocument();
  const op = doc.paths["/api/v1/workflows/{id}/versions/{version}"].get;
  const version = op.parameters.find((p: any) => p.name === "version");
  assert.equal(version.schema.type, "integer");
  assert.equal(version.schema.minimum, 1);
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    await o.api("POST", "/api/v1/workflows", { workflow_id: "w", name: "w", content: SMALL });
    for (const bad of ["abc", "0", "1.5"]) {
      const res = await o.api("GET", `/api/v1/workflows/w/versions/${bad}`);
      assert.equal(res.status, 400, bad);
      assert.equal(res.body.error.field, "version");
      assert.match(res.body.error.message, new RegExp(`, got "${bad}"$`));
    }
    assert.equal((await o.api("GET", "/api/v1/workflows/w/versions/1")).body.version, 1);
    // A version the workflow does not have is not there: 404, as documented.
    const missing = await o.api("GET", "/api/v1/workflows/w/versions/99");
    assert.equal(missing.status, 404, JSON.stringify(missing.body));
    assert.equal(missing.body.error.code, "not_found");
    assert.equal(missing.body.error.field, "version");
    assert.match(missing.body.error.message, /versions 1 to 1, not 99/);
    assert.ok(op.responses["404"]);
    // A query parameter's error quotes the text given, not what it was coerced to.
    const abc = await o.api("GET", "/api/v1/jobs?limit=abc");
    assert.equal(abc.status, 400);
    assert.equal(abc.body.error.field, "limit");
    assert.equal(abc.body.error.message, 'limit must be an integer from 1 to 1000, got "abc"');
    assert.equal((await o.api("GET", "/api/v1/workflows/nope/versions/abc")).status, 404);
  } finally {
    await o.stop();
  }
});

Deno.test("list limits start at 1 and instants in queries are full RFC 3339 instants in range", async (t) => {
  const doc: any = openApiDocument();
  const limit = doc.paths["/api/v1/jobs"].get.parameters.find((p: any) => p.name === "limit");
  assert.equal(limit.schema.minimum, 1);
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    assert.equal((await o.api("POST", "/api/v1/jobs", { workflow: SMALL })).status, 201);
    const s = await o.api("POST", "/api/v1/schedules", {
      schedule_id: "s",
      workflow: SMALL,
      cron_expression: "0 9 * * *",
    });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    const bad: [string, string][] = [
      ["/api/v1/jobs?limit=0", "limit"],
      ["/api/v1/jobs?limit=0&status=queued", "limit"],
      ["/api/v1/jobs?limit=0&order=asc", "limit"],
      ["/api/v1/schedules/s/next-runs?after=-271821-04-20T00:00:00Z", "after"],
      ["/api/v1/schedules/s/next-runs?after=1969-12-31T23:59:59Z", "after"],
      ["/api/v1/schedules/s/next-runs?after=2026-11-29T19:53:00", "after"],
      ["/api/v1/jobs?created_after=2026-11-29T19:53:00", "created_after"],
      ["/api/v1/jobs?created_after=2026-11-29", "created_after"],
      ["/api/v1/jobs?created_before=%2B275760-09-13T00:00:00Z", "created_before"],
      ["/api/v1/jobs?created_before=20261129T195300Z", "created_before"],
      ["/api/v1/audit/state?at=-271821-04-20T00:00:00Z", "at"],
      ["/api/v1/audit/state?at=2026-11-29", "at"],
      ["/api/v1/audit/state?at=0000-01-01T00:00:00Z", "at"],
      ["/api/v1/metrics/history?from=-271821-04-20T00:00:00Z", "from"],
      ["/api/v1/metrics/history?to=2026-11-29T19:53:00", "to"],
    ];
    for (const [path, field] of bad) {
      await t.step(`${path} → 400 ${field}`, async () => {
        const res = await o.api("GET", path);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.error.code, "invalid_request");
        assert.equal(res.body.error.field, field);
        assert.ok(res.body.error.message.startsWith(`${field} must be `), res.body.error.message);
      });
    }
    const good: string[] = [
      "/api/v1/jobs?limit=1&order=asc",
      "/api/v1/jobs?created_after=2026-11-29T19:53:00%2B01:00&created_before=9999-12-31T00:00:00Z",
      "/api/v1/jobs?created_after=0001-01-01T00:00:00Z",
      "/api/v1/schedules/s/next-runs?after=1970-01-01T00:00:00Z&count=1",
      "/api/v1/audit/state?at=2026-11-29T19:53:00.5Z",
      "/api/v1/metrics/history?from=2026-11-29T19:00:00Z&to=2026-11-29T20:00:00Z",
    ];
    for (const path of good) {
      await t.step(`${path} → 200`, async () => {
        const res = await o.api("GET", path);
        assert.equal(res.status, 200, JSON.stringify(res.body));
      });
    }
    const first = await o.api("GET", "/api/v1/jobs?limit=1&order=asc");
    assert.equal(first.body.jobs.length, 1);
    assert.equal(first.body.next_cursor, null);
    const next = await o.api(
      "GET",
      "/api/v1/schedules/s/next-runs?after=1970-01-01T00:00:00Z&count=1",
    );
    assert.deepEqual(next.body.next_runs, ["1970-01-01T09:00:00Z"]);
  } finally {
    await o.stop();
  }
});

Deno.test("a bare workflow file refuses job options that would be lost inside it", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    for (const option of ["priority", "timeout", "robot_id", "retry", "workflow_version"]) {
      const res = await o.api("POST", "/api/v1/jobs", {
        nodes: {},
        connections: [],
        [option]: option === "priority" ? "high" : 1,
      });
      assert.equal(res.status, 400, `${option}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.field, option);
      assert.match(res.body.error.message, /bare workflow file/);
    }
    // Workflow keys (variables, settings) and unknown keys of the file format are kept.
    const ok = await o.api("POST", "/api/v1/jobs", {
      ...SMALL,
      connections: [],
      variables: { x: 1 },
      settings: { timeout: 60 },
      layout: { zoom: 1 },
    });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.deepEqual((await o.api("GET", `/api/v1/jobs/${ok.body.job_id}`)).body.status, "queued");
  } finally {
    await o.stop();
  }
});

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] audit state at the extremes of the accepted instants`, async () => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store);
    try {
      assert.equal((await o.api("POST", "/api/v1/jobs", { workflow: SMALL })).status, 201);
      for (const at of ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]) {
        const res = await o.api("GET", `/api/v1/audit/state?at=${at}`);
        assert.equal(res.status, 200, `${at}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.jobs.length, at.startsWith("0001") ? 0 : 1);
      }
      for (const at of ["0000-12-31T23:59:59Z", "9999-12-31T23:59:59.001Z"]) {
        const res = await o.api("GET", `/api/v1/audit/state?at=${at}`);
        assert.equal(res.status, 400, at);
        assert.equal(res.body.error.field, "at");
      }
    } finally {
      await o.stop();
      await drop();
    }
  });
}
