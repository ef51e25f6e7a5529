import assert from "node:assert/strict";
import { Hono } from "hono";
import { z } from "zod";
import { errorResponse } from "./api_errors.ts";
import {
  fieldOf,
  HERE,
  isJsonContentType,
  jsonSchemaOf,
  parseWith,
  strictObject,
  validJson,
  validQuery,
} from "./validation.ts";
import { ValidationError } from "./api_errors.ts";

const caught = (fn: () => unknown): ValidationError => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error("no ValidationError");
};

Deno.test("fieldOf() writes a zod path as a JSON path", () => {
  assert.equal(fieldOf(["robot_ids", 1]), "robot_ids[1]");
  assert.equal(fieldOf(["workflow", "nodes", "n1", "node_type"]), "workflow.nodes.n1.node_type");
  assert.equal(fieldOf([]), "");
});

Deno.test("parseWith() names the unknown field first, then the first wrong one", () => {
  const S = strictObject({ role: z.string(), inner: strictObject({ n: z.int() }, "inner") }, "a");
  assert.equal(caught(() => parseWith(S, { rol: "x" })).field, "rol");
  assert.match(caught(() => parseWith(S, { rol: "x" })).message, /unknown field rol; a takes/);
  assert.equal(caught(() => parseWith(S, { role: "x", inner: { m: 1 } })).field, "inner.m");
  assert.equal(caught(() => parseWith(S, { role: "x", inner: { n: 1.5 } })).field, "inner.n");
  const notObject = caught(() => parseWith(S, [1]));
  assert.equal(notObject.field, "body");
});

Deno.test("a refinement's field relative to its schema is placed under the schema's path", () => {
  const Inner = z.object({ a: z.string() }).superRefine((_, ctx) => {
    ctx.addIssue({
      code: "custom",
      message: `${HERE}.a is wrong`,
      params: { field: `${HERE}.a`, node_id: "n" },
    });
  });
  const error = caught(() => parseWith(z.object({ outer: Inner }), { outer: { a: "x" } }));
  assert.equal(error.field, "outer.a");
  assert.equal(error.message, "outer.a is wrong");
  assert.equal(error.nodeId, "n");
});

Deno.test("validJson() refuses, as a programming error, a schema its operation does not document", async () => {
  const Documented = z.object({ a: z.string() });
  const Other = z.object({ a: z.string() });
  const app = new Hono();
  app.onError(errorResponse);
  app.use("*", async (c, next) => {
    c.set("operation" as never, { body: Documented, query: Documented } as never);
    await next();
  });
  app.post("/right", async (c) => c.json(await validJson(c, Documented)));
  app.post("/wrong", async (c) => c.json(await validJson(c, Other)));
  app.get("/query", (c) => c.json(validQuery(c, Documented)));
  const post = (path: string, body: string) =>
    app.request(path, { method: "POST", body, headers: { "content-type": "application/json" } });
  const right = await post("/right", '{"a":"x"}');
  assert.equal(right.status, 200);
  assert.deepEqual(await right.json(), { a: "x" });
  const bad = await post("/right", '{"a":1}');
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.field, "a");
  const wrong = await post("/wrong", '{"a":"x"}');
  assert.equal(wrong.status, 500);
  await wrong.body?.cancel();
  const query = await app.request("/query?a=x&b=");
  assert.deepEqual(await query.json(), { a: "x" });
});

Deno.test("jsonSchemaOf() keeps descriptions and formats and drops $schema", () => {
  const S = z.string().meta({ format: "date-time" }).optional().meta({ description: "when" });
  assert.deepEqual(jsonSchemaOf(S), { type: "string", format: "date-time", description: "when" });
});

Deno.test("isJsonContentType() takes JSON types, none, and curl's -d default; refuses the rest", () => {
  const cases: [string | undefined, boolean][] = [
    ["application/json", true],
    ["Application/JSON", true],
    ["application/json; charset=utf-8", true],
    ["application/json;charset=UTF-8", true],
    ['application/json; charset="utf-8"', true],
    ["application/merge-patch+json", true],
    ["application/vnd.orchestrator+json; charset=utf-8", true],
    [undefined, true],
    ["", true],
    ["application/x-www-form-urlencoded", true],
    ["application/json; charset=latin1", false],
    ["text/plain;charset=UTF-8", false],
    ["text/json", false],
    ["multipart/form-data; boundary=x", false],
    ["application/xml", false],
    ["application/jsonx", false],
    ["json", false],
  ];
  for (const [contentType, expected] of cases) {
    assert.equal(isJsonContentType(contentType), expected, String(contentType));
  }
});

Deno.test("readJson() answers a non-empty body of another type 415 naming Content-Type", async () => {
  const Documented = z.object({ a: z.string().optional() });
  const app = new Hono();
  app.onError(errorResponse);
  app.post("/", async (c) => c.json(await validJson(c, Documented, { allowEmpty: true })));
  const post = (body: string, type?: string) =>
    app.request("/", { method: "POST", body, headers: type ? { "content-type": type } : {} });
  const refused = await post('{"a":"x"}', "text/plain");
  assert.equal(refused.status, 415);
  assert.deepEqual(await refused.json(), {
    error: {
      code: "unsupported_media_type",
      field: "Content-Type",
      message:
        'Content-Type must be application/json (or a +json type, charset utf-8 if any), got "text/plain"',
    },
  });
  // An empty body has no type to check: it reads as `{}`.
  const empty = await post("", "text/plain");
  assert.equal(empty.status, 200);
  assert.deepEqual(await empty.json(), {});
  const json = await post('{"a":"x"}', "application/json; charset=utf-8");
  assert.deepEqual(await json.json(), { a: "x" });
});
