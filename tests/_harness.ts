// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * Test harness: a real orchestrator (real store, real HTTP and WebSocket server on a free
 * port) on either backend, and helpers that await events instead of sleeping.
 *
 * @module
 */
import {
  type Clock,
  type ClusterOptions,
  type EngineConfig,
  Orchestrator,
  type OrchestratorOptions,
} from "../engine/mod.ts";
import { openEventStore, type SqlEventStore } from "../events/mod.ts";
import { createApp, serve } from "../http/mod.ts";
import postgres from "postgres";

/** PostgreSQL used by the tests. */
export const TEST_DATABASE_URL = Deno.env.get("DATABASE_URL_TEST") ??
  "postgres://postgres@127.0.0.1:5432/test";

/** A storage backend the suites run against. */
export interface Backend {
  name: "pglite" | "postgres";
  /** Opens a fresh, empty store; `reopen` opens the same one again. */
  open(): Promise<
    { store: SqlEventStore; reopen: () => Promise<SqlEventStore>; drop: () => Promise<void> }
  >;
}

/** Embedded PGlite in a temporary folder. */
export const pgliteBackend: Backend = {
  name: "pglite",
  async open() {
    const dataDir = await Deno.makeTempDir({ prefix: "orch-test-" });
    const reopen = () => openEventStore({ dataDir });
    return {
      store: await reopen(),
      reopen,
      drop: () => Deno.remove(dataDir, { recursive: true }),
    };
  },
};

/** The PostgreSQL server, in a fresh schema per store. */
export const postgresBackend: Backend = {
  name: "postgres",
  async open() {
    const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const reopen = () =>
      openEventStore({
        databaseUrl: TEST_DATABASE_URL,
        dataDir: "unused",
        schema,
        maxConnections: 4,
      });
    return {
      store: await reopen(),
      reopen,
      drop: async () => {
        const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
        try {
          await sql.unsafe(`drop schema if exists ${schema} cascade`);
        } finally {
          await sql.end();
        }
      },
    };
  },
};

/** Both backends: every storage test runs against each. */
export const BACKENDS: readonly Backend[] = [pgliteBackend, postgresBackend];

/** A running orchestrator under test. */
export interface TestOrchestrator {
  orchestrator: Orchestrator;
  store: SqlEventStore;
  url: string;
  wsUrl: string;
  apiToken: string;
  robotToken: string;
  /** JSON request to the API with the API token. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Resolves with the job's view once it reaches one of `statuses`. */
  waitForJob(jobId: string, statuses: string[], signal?: AbortSignal): Promise<any>;
  /** Resolves once `predicate()` holds, checked after every batch of applied events. */
  waitUntil(predicate: () => boolean, signal?: AbortSignal): Promise<void>;
  /** Stops the server and the orchestrator; closes the store unless `keepStore`. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
}

/** What {@linkcode call} answers: the status, the raw body, and the body parsed as JSON. */
export interface CallAnswer {
  /** HTTP status code. */
  status: number;
  /** The response body as text (for byte-for-byte comparisons). */
  text: string;
  /** `text` parsed as JSON when the response says `application/json`; otherwise `null`. */
  body: any;
}

/**
 * Sends one request to `t`'s HTTP API as the holder of `token` (any token: the system API
 * token, or one issued for an org and role), with `body` (if given) as JSON.
 *
 * @param t The orchestrator under test.
 * @param token Bearer token sent in `Authorization`.
 * @param method HTTP method.
 * @param path Path and query, e.g. `/api/v1/jobs?limit=10`.
 * @param body Request body, sent with `JSON.stringify`; none when `undefined`.
 * @returns The status, the body's text, and the body parsed when it is JSON.
 * @throws {SyntaxError} When the response says `application/json` but is not JSON.
 *
 * @example Issuing a token for org `acme`
 * ```ts
 * const res = await call(t, t.apiToken, "POST", "/api/v1/tokens", { org_id: "acme", role: "admin" });
 * assert.equal(res.status, 201, res.text);
 * ```
 */
export async function call(
  t: Pick<TestOrchestrator, "url">,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<CallAnswer> {
  const res = await fetch(t.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = res.headers.get("content-type")?.includes("json") && text !== "";
  return { status: res.status, text, body: json ? JSON.parse(text) : null };
}

/** Starts an orchestrator on `store`, serving on 127.0.0.1 and a free port. */
export async function startOrchestrator(
  store: SqlEventStore,
  config: Partial<EngineConfig> = {},
  clock?: Clock,
  extra: Pick<OrchestratorOptions, "alerts" | "fetch" | "logger"> & { cluster?: ClusterOptions } =
    {},
): Promise<TestOrchestrator> {
  const apiToken = "test-api-token";
  const robotToken = "test-robot-token";
  const orchestrator = new Orchestrator({ store, robotToken, config, clock, ...extra });
  await orchestrator.start();
  const app = createApp({ orchestrator, apiToken });
  const abort = new AbortController();
  let port = 0;
  const server = serve({
    app,
    orchestrator,
    apiToken,
    hostname: "127.0.0.1",
    port: 0,
    signal: abort.signal,
    onListen: (addr) => (port = addr.port),
  });
  port = server.addr.port;
  const url = `http://127.0.0.1:${port}`;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${apiToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  const waitForJob = (jobId: string, statuses: string[], signal = AbortSignal.timeout(20_000)) =>
    new Promise<any>((resolve, reject) => {
      const check = () => {
        const view = orchestrator.jobs.view(jobId);
        if (view && statuses.includes(view.status)) {
          off();
          resolve(view);
        }
      };
      const off = orchestrator.core.onEvents(check);
      signal.addEventListener("abort", () => {
        off();
        reject(
          new Error(
            `job ${jobId} did not reach ${statuses} (is ${orchestrator.jobs.view(jobId)?.status})`,
          ),
        );
      });
      check();
    });
  const waitUntil = (predicate: () => boolean, signal = AbortSignal.timeout(20_000)) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        off();
        resolve();
      };
      const off = orchestrator.core.onEvents(check);
      signal.addEventListener("abort", () => {
        off();
        reject(new Error("condition not reached"));
      });
      check();
    });
  return {
    orchestrator,
    store,
    waitUntil,
    url,
    wsUrl: `ws://127.0.0.1:${port}/ws/robot`,
    apiToken,
    robotToken,
    api,
    waitForJob,
    async stop(options = {}) {
      await orchestrator.stop();
      abort.abort();
      await server.finished;
      if (!options.keepStore) await store.close();
    },
  };
}
