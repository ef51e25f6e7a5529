/**
 * Request validation with zod (https://zod.dev): the schemas of request bodies and queries
 * are the validators the routes call and, converted with zod's own `z.toJSONSchema`
 * (JSON Schema 2020-12, the dialect of OpenAPI 3.1), the request schemas of the OpenAPI
 * document (`openapi_document.ts`). One definition, so the document cannot drift from what
 * the routes accept.
 *
 * A failed validation is a {@linkcode ValidationError} (400 `invalid_request`) naming the
 * first issue's field as a JSON path (`variables.x`, `robot_ids[1]`, `workflow.nodes.n1`).
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { z } from "zod";
import { UnsupportedMediaTypeError, ValidationError } from "./api_errors.ts";

/**
 * Named request schemas: each becomes `components.schemas[id]` of the OpenAPI document and
 * is referenced from wherever it is used. Register with `.register(REQUEST_SCHEMAS, {id})`.
 */
export const REQUEST_SCHEMAS: z.core.$ZodRegistry<{ id: string; description?: string }> = z
  .registry<{ id: string; description?: string }>();

/**
 * Marker in the `params.field` of a custom issue raised by a refinement that knows the
 * field only relative to the schema it refines: replaced by that schema's path.
 */
export const HERE = "\u0001";

/** `["robot_ids", 1]` → `robot_ids[1]`; `["workflow", "nodes", "n1"]` → `workflow.nodes.n1`. */
export function fieldOf(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/**
 * The error for the first issue of a failed parse. `params.field`/`params.node_id` of a
 * custom issue (from a refinement) override the field and add the node; a node of a
 * workflow's `nodes` (`workflow.nodes.<id>…`, `content.nodes.<id>…`) is named as
 * `node_id` too.
 */
export function validationErrorOf(error: z.ZodError): ValidationError {
  // An unknown field first: it is often the misspelling of a missing one.
  const issue = error.issues.find((i) => i.code === "unrecognized_keys") ?? error.issues[0];
  let path: PropertyKey[] = [...issue.path];
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    path = [...path, issue.keys[0]];
    const where = issue.path.length ? ` in ${fieldOf(issue.path)}` : "";
    message = `unknown field ${fieldOf(path)}${where}; ${issue.message}`;
  }
  const base = fieldOf(path);
  const params = issue.code === "custom"
    ? (issue.params ?? {}) as { field?: string; node_id?: string }
    : {};
  const field = params.field !== undefined
    ? params.field.replace(HERE, base).replace(/^\./, "")
    : base;
  message = message.replaceAll(HERE, base).replace(/^\./, "");
  let nodeId = params.node_id ?? null;
  const at = path.findIndex((seg, i) =>
    seg === "nodes" && (path[i - 1] === "workflow" || path[i - 1] === "content")
  );
  if (nodeId === null && at >= 0 && typeof path[at + 1] === "string") {
    nodeId = path[at + 1] as string;
    if (!message.includes(`"${nodeId}"`)) message = `Node "${nodeId}": ${message}`;
  }
  if (field === "") return new ValidationError("body", "Body must be a JSON object");
  if (!message.includes(field) && !(nodeId && message.includes(nodeId))) {
    message = `${field}: ${message}`;
  }
  return new ValidationError(field, message, nodeId);
}

/**
 * Parses `value` with `schema`.
 * @throws {ValidationError} naming the first wrong field.
 */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationErrorOf(result.error);
  return result.data;
}

/** `type/subtype` and parameters of a `Content-Type` (RFC 9110 section 8.3.1). */
const MEDIA_TYPE = /^\s*([\w.+-]+)\/([\w.+-]+)\s*((?:;[^;]*)*)$/;

/**
 * Whether a request body sent with this `Content-Type` is read as JSON:
 * - `application/json` and any structured-syntax `+json` type (`application/merge-patch+json`;
 *   RFC 6839 section 3.1), case-insensitive, with no `charset` or `charset=utf-8` (RFC 8259
 *   section 8.1: JSON between systems is UTF-8; the body is decoded as UTF-8 whatever it says);
 * - no `Content-Type` at all (`undefined` or empty): RFC 9110 section 8.3 lets the recipient
 *   examine the data, and the API takes only JSON;
 * - `application/x-www-form-urlencoded`, what curl sends with `-d` unless told otherwise (the
 *   README's examples are written so): the type is curl's, not the sender's choice, and the API
 *   has no forms; this is safe as no browser attaches the bearer token to a cross-site form.
 *
 * Anything else (`text/plain`, `multipart/form-data`, `application/xml`, a malformed header)
 * is not.
 *
 * @param contentType The request's `Content-Type` header, if it has one.
 * @returns True when the body is to be parsed as JSON.
 *
 * @example
 * ```ts
 * isJsonContentType("application/json; charset=UTF-8"); // true
 * isJsonContentType("text/plain"); // false
 * ```
 */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined || contentType.trim() === "") return true;
  const match = MEDIA_TYPE.exec(contentType.toLowerCase());
  if (match === null) return false;
  const [, type, subtype, params] = match;
  if (type === "application" && subtype === "x-www-form-urlencoded") return true;
  if (type !== "application" || !(subtype === "json" || subtype.endsWith("+json"))) return false;
  return params.split(";").slice(1).every((param) => {
    const [name, value = ""] = param.split("=").map((part) => part.trim());
    return name !== "charset" || value.replace(/^"(.*)"$/, "$1") === "utf-8";
  });
}

/**
 * Reads the request body as JSON.
 * @param options `allowEmpty`: an empty body reads as `{}` (for optional bodies).
 * @throws {UnsupportedMediaTypeError} when the body is not empty and its `Content-Type` is
 *   not one {@linkcode isJsonContentType} accepts (answered 415).
 * @throws {ValidationError} naming `body` when it is not JSON.
 */
export async function readJson(
  c: Context,
  options: { allowEmpty?: boolean } = {},
): Promise<unknown> {
  const text = await c.req.text();
  const contentType = c.req.header("content-type");
  if (text.trim() !== "" && !isJsonContentType(contentType)) {
    throw new UnsupportedMediaTypeError(contentType ?? "");
  }
  if (options.allowEmpty && text.trim() === "") return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ValidationError("body", `Body is not valid JSON: ${(error as Error).message}`);
  }
  refuseUnstorableText(json);
  return json;
}

/** NUL and lone UTF-16 surrogates (code units, so a valid pair is left alone). */
const UNSTORABLE_CHARS =
  // deno-lint-ignore no-control-regex
  /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Why `s` cannot be stored (Postgres `text`/`jsonb` and canonical JSON refuse it), or null. */
function unstorable(s: string): string | null {
  if (s.includes("\u0000")) return "contains \\u0000 (NUL), which cannot be stored";
  if (!s.isWellFormed()) return "contains a lone UTF-16 surrogate, which cannot be stored";
  return null;
}

/**
 * Refuses a NUL (`\u0000`) or a lone UTF-16 surrogate anywhere in a parsed JSON body, in a
 * value or a key: Postgres `text`/`jsonb` reject the first and the audit log's canonical
 * JSON the second, so every request body is checked here once, before any route sees it.
 * Walks iteratively (a body may nest deeper than the call stack allows).
 * @throws {ValidationError} naming the JSON path of the offending value (`variables.a`,
 *   `nodes.n1.config.url`); for a key, the path with the offending characters removed.
 */
export function refuseUnstorableText(json: unknown): void {
  // Paths as parent links, built into a field name only on error: copying the path per
  // value would be quadratic in the depth.
  type At = { parent: At | null; seg: PropertyKey } | null;
  const pathOf = (at: At): PropertyKey[] => {
    const out: PropertyKey[] = [];
    for (let a = at; a !== null; a = a.parent) out.unshift(a.seg);
    return out;
  };
  const stack: [unknown, At][] = [[json, null]];
  while (stack.length > 0) {
    const [value, at] = stack.pop()!;
    if (typeof value === "string") {
      const why = unstorable(value);
      if (why !== null) {
        const field = fieldOf(pathOf(at)) || "body";
        throw new ValidationError(field, `${field} ${why}`);
      }
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push([value[i], { parent: at, seg: i }]);
    } else if (typeof value === "object" && value !== null) {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i];
        const why = unstorable(key);
        if (why !== null) {
          const printable = key.replace(UNSTORABLE_CHARS, "");
          const field = fieldOf([...pathOf(at), printable]) || "body";
          throw new ValidationError(field, `${field}: the key ${JSON.stringify(key)} ${why}`);
        }
        stack.push([item, { parent: at, seg: key }]);
      }
    }
  }
}

/**
 * The operation the auth middleware matched for this request (`auth_middleware.ts`), if
 * any: the validators check that they are the ones its OpenAPI entry documents.
 */
function documented(
  c: Context,
): { body?: unknown; query?: unknown; params?: unknown } | undefined {
  return c.get("operation" as never) as
    | { body?: unknown; query?: unknown; params?: unknown }
    | undefined;
}

/**
 * Reads and validates the JSON body of a request with `schema`, which must be the `body`
 * of the request's operation in the OpenAPI table.
 * @param options `allowEmpty`: an empty body reads as `{}`; `prepare`: maps the parsed JSON
 *   before validation (e.g. wraps an accepted shorthand).
 * @throws {ValidationError} naming the first wrong field (or `body`).
 * @throws {TypeError} when `schema` is not the documented one (a programming error).
 */
export async function validJson<S extends z.ZodType>(
  c: Context,
  schema: S,
  options: { allowEmpty?: boolean; prepare?: (json: unknown) => unknown } = {},
): Promise<z.output<S>> {
  const op = documented(c);
  if (op && op.body !== schema) {
    throw new TypeError(`${c.req.method} ${c.req.path} validates a body it does not document`);
  }
  const json = await readJson(c, options);
  return parseWith(schema, options.prepare ? options.prepare(json) : json);
}

/**
 * Parses text parameters (query or path): an error's `got …` quotes the text as given, not
 * what a coercing schema made of it (`limit=abc` is `got "abc"`, not `got null` from NaN).
 * @throws {ValidationError} naming the first wrong parameter.
 */
function parseText<S extends z.ZodType>(
  schema: S,
  text: Record<string, string>,
): z.output<S> {
  try {
    return parseWith(schema, text);
  } catch (error) {
    if (!(error instanceof ValidationError) || !Object.hasOwn(text, error.field)) throw error;
    const given = JSON.stringify(text[error.field]);
    const message = error.message.replace(/, got [^]*$/, `, got ${given}`);
    throw new ValidationError(error.field, message, error.nodeId);
  }
}

/**
 * Validates the query string with `schema` (the `query` of the request's operation).
 * Parameters given empty (`?status=`) count as absent; repeated ones count once (the first).
 * @throws {ValidationError} naming the first wrong parameter.
 * @throws {TypeError} when `schema` is not the documented one.
 */
export function validQuery<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const op = documented(c);
  if (op && op.query !== schema) {
    throw new TypeError(`${c.req.method} ${c.req.path} validates a query it does not document`);
  }
  const query = Object.fromEntries(
    Object.entries(c.req.query()).filter(([, v]) => v !== ""),
  );
  refuseUnstorableText(query);
  return parseText(schema, query);
}

/**
 * Validates the path parameters with `schema` (the `params` of the request's operation).
 * @throws {ValidationError} naming the first wrong parameter.
 * @throws {TypeError} when `schema` is not the documented one.
 */
export function validParams<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const op = documented(c);
  if (op && op.params !== schema) {
    throw new TypeError(
      `${c.req.method} ${c.req.path} validates path parameters it does not document`,
    );
  }
  const params = c.req.param();
  refuseUnstorableText(params);
  return parseText(schema, params);
}

/** An `error` option saying `<field> must be <what>, got <input>` (or `is required`). */
export function must(field: string, what: string): { error: (iss: { input?: unknown }) => string } {
  return {
    error: (iss) =>
      iss.input === undefined
        ? `${field} is required`
        : `${field} must be ${what}, got ${JSON.stringify(iss.input) ?? String(iss.input)}`,
  };
}

/**
 * An object that refuses unknown fields (`unknown field colour; a workflow takes name, …`).
 * @param noun what it is, for the message ("a job").
 */
export function strictObject<T extends z.core.$ZodLooseShape>(
  shape: T,
  noun: string,
): z.ZodObject<T, z.core.$strict> {
  const fields = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === "unrecognized_keys"
        ? fields === "" ? `${noun} takes no fields` : `${noun} takes ${fields}`
        : iss.code === "invalid_type"
        ? `${noun === "" ? "body" : "it"} must be a JSON object`
        : undefined,
  });
}

/** The body of an operation that documents none: empty, or an empty JSON object. */
export const NoBody: z.ZodObject<Record<never, never>, z.core.$strict> = strictObject(
  {},
  "this operation",
);

/**
 * Middleware (after the auth middleware, which finds the operation): an operation that
 * documents no body (`POST /api/v1/robots/:id/pause`, `…/cancel`) refuses a body with
 * fields, 400 naming the first, so a misplaced option is not silently ignored.
 * @throws {ValidationError} for a body that is not empty or `{}`.
 */
export function refuseUndocumentedBody(): MiddlewareHandler {
  return async (c, next) => {
    const op = documented(c) as { method?: string; body?: unknown } | undefined;
    if (op && op.method !== "get" && op.body === undefined) {
      parseWith(NoBody, await readJson(c, { allowEmpty: true }));
    }
    await next();
  };
}

/** A query parameter holding an integer from `min` to `max`. */
export function intQuery(field: string, min: number, max: number): z.ZodCoercedNumber {
  return z.coerce.number(must(field, `an integer from ${min} to ${max}`)).int(
    must(field, `an integer from ${min} to ${max}`),
  ).min(min, must(field, `an integer from ${min} to ${max}`)).max(
    max,
    must(field, `an integer from ${min} to ${max}`),
  );
}

/** `date-time` of RFC 3339 section 5.6 (offset required). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Earliest instant {@linkcode instant} accepts by default: RFC 3339 has four-digit years and
 * PostgreSQL's `timestamptz` has no year 0 (`0000-…` was a 500 from `audit/state?at=`).
 */
export const INSTANT_MIN = "0001-01-01T00:00:00Z";
/** Latest instant {@linkcode instant} accepts (a replay reads up to 1 ms past it). */
export const INSTANT_MAX = "9999-12-31T23:59:59Z";

/**
 * A query parameter or field holding an RFC 3339 instant with an offset (`Z` or `+02:00`;
 * a date alone or a local time is refused, as `Temporal.Instant.from` does), from `min`
 * (default year 0001) to year 9999: beyond, Temporal and the date arithmetic behind the
 * routes throw (its range ends at year ±275760).
 */
export function instant(field: string, min: string = INSTANT_MIN): z.ZodString {
  const lo = Temporal.Instant.from(min);
  const hi = Temporal.Instant.from(INSTANT_MAX);
  const what =
    `an RFC 3339 instant with an offset (such as 2026-01-31T09:00:00Z) from ${min} to ${INSTANT_MAX}`;
  return z.string().refine((v) => {
    // The grammar first (Temporal also takes basic formats and annotations), then what
    // the routes do with it: `Date.parse` and Temporal must both read it, within range.
    if (!RFC3339.test(v) || Number.isNaN(Date.parse(v))) return false;
    let at: Temporal.Instant;
    try {
      at = Temporal.Instant.from(v);
    } catch {
      return false;
    }
    return Temporal.Instant.compare(at, lo) >= 0 && Temporal.Instant.compare(at, hi) <= 0;
  }, {
    error: (iss) => `${field} must be ${what}, got ${JSON.stringify(iss.input)}`,
  }).meta({ format: "date-time" }) as unknown as z.ZodString;
}

/**
 * The JSON Schema (2020-12, as OpenAPI 3.1 uses) of what `schema` accepts; a named schema
 * of {@linkcode REQUEST_SCHEMAS} is a `$ref` to `#/components/schemas/<id>`.
 */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const id = REQUEST_SCHEMAS.get(schema)?.id;
  if (id !== undefined) return { $ref: `#/components/schemas/${id}` };
  // Metadata (descriptions, formats) is read from zod's global registry, where `.meta()`
  // puts it; named schemas are only used whole, as request bodies (a `$ref` above).
  const json = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
  }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

/** The JSON Schemas of every named request schema, by id (for `components.schemas`). */
export function namedJsonSchemas(): Record<string, Record<string, unknown>> {
  const { schemas } = z.toJSONSchema(REQUEST_SCHEMAS, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
    uri: (ref) => `#/components/schemas/${ref}`,
  });
  const out: Record<string, Record<string, unknown>> = {};
  for (const [id, s] of Object.entries(schemas)) {
    const { $schema: _, $id: _id, ...rest } = s as Record<string, unknown>;
    out[id] = rest;
  }
  return out;
}
