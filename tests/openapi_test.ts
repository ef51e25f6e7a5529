// deno-lint-ignore-file no-explicit-any -- the OpenAPI document as parsed JSON
/**
 * `GET /api/v1/openapi.json`: every route the Hono app registers is documented (and nothing
 * else), the document holds together as OpenAPI 3.1, and every documented operation answers
 * one of its documented statuses through the real server on both stores.
 */
import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Orchestrator } from "../engine/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { createApp } from "../http/mod.ts";
import { openApiDocument, openApiPath, OPERATIONS } from "../http/openapi_document.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";

/** Routes served outside the Hono app (by the Deno adapter, `http/server.ts`). */
const ADAPTER_ROUTES = new Set(["get /ws/robot", "get /ws/realtime"]);
/** The web dashboard's static files (HTML, scripts), not part of the JSON API. */
const STATIC_ROUTES = new Set(["get /", "get /web/*"]);

Deno.test("every route registered in the Hono app is in the OpenAPI document, and only those", async () => {
  const store = await openEventStore({ dataDir: "memory://" });
  const orchestrator = new Orchestrator({ store, robotToken: "r" });
  try {
    const app = createApp({ orchestrator, apiToken: "a" });
    const document: any = openApiDocument();
    const registered = new Set(
      app.routes.filter((r) => r.method !== "ALL").map((r) =>
        `${r.method.toLowerCase()} ${openApiPath(r.path)}`
      ),
    );
    assert.ok(registered.size > 30, `only ${registered.size} routes found`);
    const documented = new Set<string>();
    for (const [path, item] of Object.entries<any>(document.paths)) {
      for (const method of Object.keys(item)) documented.add(`${method} ${path}`);
    }
    const missing = [...registered].filter((r) => !documented.has(r) && !STATIC_ROUTES.has(r));
    assert.deepEqual(missing, [], "registered but not documented");
    const stale = [...documented].filter((r) => !registered.has(r) && !ADAPTER_ROUTES.has(r));
    assert.deepEqual(stale, [], "documented but not registered");
  } finally {
    await store.close();
  }
});

Deno.test("the OpenAPI document is valid 3.1: unique operation ids, declared path parameters, resolvable $refs", async () => {
  const doc: any = openApiDocument();
  const validator = new Validator();
  const result = await validator.validate(doc);
  assert.deepEqual(result, { valid: true }, "valid against the OpenAPI 3.1 JSON Schema");
  assert.equal(validator.version, "3.1");
  const broken = await new Validator().validate({ openapi: "3.1.0", info: {}, paths: {} });
  assert.equal(broken.valid, false, "the validator does refuse a broken document");
  assert.equal(doc.openapi, "3.1.0");
  assert.equal(typeof doc.info.title, "string");
  assert.equal(typeof doc.info.version, "string");
  assert.equal(doc.components.securitySchemes.bearer.scheme, "bearer");
  const ids = new Set<string>();
  const refs: string[] = [];
  const collect = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k === "$ref") refs.push(x as string);
        else collect(x);
      }
    }
  };
  collect(doc);
  for (const r of refs) {
    const name = r.match(/^#\/components\/schemas\/(\w+)$/)?.[1];
    assert.ok(name && doc.components.schemas[name], `unresolved $ref ${r}`);
  }
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    assert.match(path, /^\//);
    const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const [method, op] of Object.entries<any>(item)) {
      assert.ok(["get", "post", "put", "patch", "delete"].includes(method), method);
      assert.ok(!ids.has(op.operationId), `duplicate operationId ${op.operationId}`);
      ids.add(op.operationId);
      assert.equal(typeof op.summary, "string");
      const declared = (op.parameters ?? []).filter((p: any) => p.in === "path").map((p: any) =>
        p.name
      ).sort();
      assert.deepEqual(declared, templated, `${method} ${path} path parameters`);
      assert.ok(Object.keys(op.responses).length > 0);
      for (const [status, response] of Object.entries<any>(op.responses)) {
        assert.match(status, /^[1-5]\d\d$/);
        assert.equal(typeof response.description, "string");
      }
    }
  }
});

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] every documented operation answers one of its documented statuses`, async () => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store);
    try {
      const served = await o.api("GET", "/api/v1/openapi.json");
      assert.equal(served.status, 200);
      assert.deepEqual(served.body, openApiDocument());
      for (const op of OPERATIONS) {
        const path = op.path.replace(/:\w+/g, "nope");
        const res = await fetch(o.url + path, {
          method: op.method.toUpperCase(),
          headers: { authorization: `Bearer ${o.apiToken}`, "content-type": "application/json" },
          body: op.method === "get" || op.method === "delete" ? undefined : "{}",
        });
        if (op.produces === "text/event-stream") {
          // An endless stream: its status says it is served.
          assert.equal(res.status, 200, `${op.method} ${op.path}`);
          await res.body?.cancel();
          continue;
        }
        const text = await res.text();
        assert.ok(
          String(res.status) in op.responses,
          `${op.method} ${op.path}: ${res.status} is not documented (${text.slice(0, 200)})`,
        );
        assert.doesNotMatch(text, /No route/, `${op.method} ${op.path} is not routed`);
      }
    } finally {
      await o.stop();
      await drop();
    }
  });
}
