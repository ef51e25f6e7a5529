/**
 * One contract suite for the event store, run against every backend: embedded PGlite and
 * a real PostgreSQL (`DATABASE_URL`, default the local `test` database), each test in a
 * fresh database or schema. Postgres-only cases cover what needs a second connection:
 * transactions committing out of order, NOTIFY from another process, a lost LISTEN.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import {
  createPgliteClient,
  createPostgresClient,
  createSqlEventStore,
  eventHash,
  GENESIS_HASH,
  migrateEventsSchema,
  openEventStore,
  type RecordedEvent,
  type SqlClient,
  type SqlEventStore,
  type StreamAppend,
  subscribeAll,
  type SubscribeAllOptions,
  WrongExpectedVersionError,
} from "../events/mod.ts";

const DATABASE_URL = Deno.env.get("DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/test";
/** Safety net of every wait, in milliseconds; tests never sleep. */
const WAIT_MS = 15_000;

/** A fresh store of one backend, plus what Postgres-only cases need. */
interface Harness {
  store: SqlEventStore;
  /** Postgres: another store on the same schema (another process); its own pool. */
  openAnother?: (options?: { notify?: boolean }) => Promise<SqlEventStore>;
  /** Postgres: a raw postgres.js pool on the same schema. */
  raw?: postgres.Sql;
  /** Postgres: `application_name` of `store`'s connections. */
  applicationName?: string;
  /** Registers a cleanup, run (last first) even when the test fails, before disposal. */
  defer: (cleanup: () => unknown) => void;
}

interface Backend {
  name: string;
  open(): Promise<{ harness: Omit<Harness, "defer">; dispose(): Promise<void> }>;
}

const pglite: Backend = {
  name: "pglite",
  async open() {
    const store = await openEventStore({ dataDir: "memory://" });
    return { harness: { store }, dispose: () => store.close() };
  },
};

const postgresBackend: Backend = {
  name: "postgres",
  async open() {
    const schema = `events_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const applicationName = `events-test-${schema}`;
    const store = await openEventStore({
      databaseUrl: DATABASE_URL,
      dataDir: "unused",
      schema,
      applicationName,
    });
    const others: SqlEventStore[] = [];
    const raw = postgres(DATABASE_URL, {
      max: 4,
      onnotice: () => {},
      connection: { search_path: schema },
    });
    const openAnother = async (options: { notify?: boolean } = {}) => {
      const other = await openEventStore({
        databaseUrl: DATABASE_URL,
        dataDir: "unused",
        schema,
        notify: options.notify,
      });
      others.push(other);
      return other;
    };
    return {
      harness: { store, raw, openAnother, applicationName },
      async dispose() {
        try {
          await Promise.all([store, ...others].map((s) => s.close()));
        } finally {
          await raw.unsafe(`drop schema if exists "${schema}" cascade`);
          await raw.end();
        }
      },
    };
  },
};

function event(type = "job.queued", data: Record<string, unknown> = {}) {
  return { type, data };
}

function write(streamId: string, expectedVersion: number | "any", count = 1): StreamAppend {
  return {
    streamId,
    expectedVersion,
    events: Array.from({ length: count }, (_, i) => event("job.queued", { i })),
  };
}

const positions = (events: RecordedEvent[]) => events.map((e) => e.globalPosition);

/**
 * Resolves once `readAll` can return the event at `position`. On a shared server another
 * client's open transaction may hold fresh events back for a moment: awaiting this keeps
 * assertions on `readAll` deterministic. Uses the store's own subscription, no sleep.
 */
async function readable(store: SqlEventStore, position: number): Promise<void> {
  const sub = subscribeAll(store, { onEvents: () => {}, pollIntervalMs: 5 });
  try {
    await sub.waitFor(position, { signal: AbortSignal.timeout(WAIT_MS) });
  } finally {
    await sub.close();
  }
}

/** Collects what a subscription delivers and checks its handler never overlaps. */
function record(
  h: Harness,
  options: Partial<SubscribeAllOptions> = {},
  store: SqlEventStore = h.store,
) {
  const seen: RecordedEvent[] = [];
  let running = false;
  const sub = subscribeAll(store, {
    ...options,
    async onEvents(events) {
      assert.equal(running, false, "onEvents calls overlap");
      running = true;
      await Promise.resolve();
      seen.push(...events);
      running = false;
    },
  });
  h.defer(() => sub.close());
  return { seen, sub };
}

type Case = [name: string, run: (h: Harness) => Promise<void>];

const contract: Case[] = [
  [
    "append() to a new stream with expected version 0 records versions from 1",
    async ({ store }) => {
      const result = await store.append([{
        streamId: "job-1",
        expectedVersion: 0,
        events: [
          { type: "job.queued", data: { n: 1, nested: { ok: true } }, metadata: { by: "t" } },
          event("job.started"),
        ],
      }]);
      assert.deepEqual(result.versions, { "job-1": 2 });
      assert.deepEqual(result.events.map((e) => [e.streamVersion, e.type]), [
        [1, "job.queued"],
        [2, "job.started"],
      ]);
      const [first, second] = result.events;
      assert.equal(typeof first.globalPosition, "number");
      assert.equal(second.globalPosition, first.globalPosition + 1);
      assert.deepEqual(first.data, { n: 1, nested: { ok: true } });
      assert.deepEqual(first.metadata, { by: "t" });
      assert.deepEqual(second.metadata, {});
      assert.ok(first.recordedAt instanceof Date);
      assert.match(first.eventId, /^[0-9a-f-]{36}$/);
      assert.deepEqual(await store.readStream("job-1"), result.events);
      await readable(store, second.globalPosition);
      assert.equal(await store.currentPosition(), second.globalPosition);
    },
  ],
  ["append() rejects a stale expected version and writes nothing", async ({ store }) => {
    const { events } = await store.append([write("job-1", 0, 2)]);
    await readable(store, events[1].globalPosition);
    const before = await store.readAll();
    for (
      const [streamId, expected, actual] of [["job-1", 1, 2], ["job-1", 0, 2], [
        "job-2",
        3,
        0,
      ]] as const
    ) {
      const error = await store.append([write(streamId, expected)]).catch((e) => e);
      assert.ok(error instanceof WrongExpectedVersionError);
      assert.equal(error.name, "WrongExpectedVersionError");
      assert.deepEqual([error.streamId, error.expected, error.actual], [
        streamId,
        expected,
        actual,
      ]);
    }
    assert.deepEqual(await store.readStream("job-1"), events);
    assert.deepEqual(await store.readAll(), before);
    // The losers burned no sequence value: the next append takes the next position.
    const next = await store.append([write("job-1", 2)]);
    assert.equal(next.events[0].globalPosition, events[1].globalPosition + 1);
  }],
  ["append() to several streams is atomic: one stale stream writes none", async ({ store }) => {
    const { events: [a] } = await store.append([write("job-a", 0)]);
    await readable(store, a.globalPosition);
    const before = await store.readAll();
    await assert.rejects(
      store.append([write("job-a", 1), write("job-b", 3)]),
      (e) => e instanceof WrongExpectedVersionError && e.streamId === "job-b" && e.actual === 0,
    );
    assert.deepEqual(await store.readAll(), before);
    assert.deepEqual(await store.readStream("job-b"), []);
    const both = await store.append([write("job-a", 1), write("job-b", 0, 2)]);
    assert.deepEqual(both.versions, { "job-a": 2, "job-b": 2 });
    assert.deepEqual(positions(both.events), [1, 2, 3].map((i) => before[0].globalPosition + i));
  }],
  ["readStream() returns a stream in version order from fromVersion", async ({ store }) => {
    await store.append([write("job-1", 0, 2)]);
    await store.append([write("job-2", 0)]);
    await store.append([write("job-1", 2, 3)]);
    const all = await store.readStream("job-1");
    assert.deepEqual(all.map((e) => e.streamVersion), [1, 2, 3, 4, 5]);
    assert.ok(all.every((e) => e.streamId === "job-1"));
    assert.deepEqual(await store.readStream("job-1", { fromVersion: 3 }), all.slice(2));
    assert.deepEqual(await store.readStream("job-9"), []);
    await assert.rejects(store.readStream("job-1", { fromVersion: 0 }), RangeError);
  }],
  ["readAll() pages the global order with after, limit and streamId", async ({ store }) => {
    assert.deepEqual(await store.readAll(), []);
    assert.equal(await store.currentPosition(), 0);
    let last = 0;
    for (const w of [write("s-1", 0), write("s-2", 0), write("s-1", 1), write("s-3", 0, 2)]) {
      last = (await store.append([w])).events.at(-1)!.globalPosition;
    }
    await readable(store, last);
    const all = await store.readAll();
    assert.deepEqual(all.map((e) => [e.streamId, e.streamVersion]), [
      ["s-1", 1],
      ["s-2", 1],
      ["s-1", 2],
      ["s-3", 1],
      ["s-3", 2],
    ]);
    const pages: RecordedEvent[] = [];
    for (let page = await store.readAll({ limit: 2 }); page.length > 0;) {
      assert.ok(page.length <= 2);
      pages.push(...page);
      page = await store.readAll({ after: page[page.length - 1].globalPosition, limit: 2 });
    }
    assert.deepEqual(pages, all);
    const s1 = await store.readAll({ streamId: "s-1" });
    assert.deepEqual(s1, [all[0], all[2]]);
    assert.deepEqual(await store.readAll({ streamId: "s-1", after: s1[0].globalPosition }), [
      all[2],
    ]);
    assert.deepEqual(await store.readAll({ after: all[4].globalPosition }), []);
    await assert.rejects(store.readAll({ after: all[4].globalPosition + 100 }), RangeError);
    await assert.rejects(store.readAll({ limit: 0 }), RangeError);
    // readAllPage: the same pages, in one statement with the held-back flag.
    const onePass: RecordedEvent[] = [];
    for (let after = 0;;) {
      const { events, heldBack } = await store.readAllPage({ after, limit: 2 });
      assert.equal(heldBack, false);
      assert.deepEqual(events, await store.readAll({ after, limit: 2 }));
      if (events.length === 0) break;
      onePass.push(...events);
      after = events.at(-1)!.globalPosition;
    }
    assert.deepEqual(onePass, all);
    await assert.rejects(store.readAllPage({ after: all[4].globalPosition + 100 }), RangeError);
    await assert.rejects(store.readAllPage({ limit: 0 }), RangeError);
  }],
  [
    "append() with recorded event ids returns the originals and writes nothing",
    async ({ store }) => {
      const ids = [crypto.randomUUID(), crypto.randomUUID()];
      const writes: StreamAppend[] = [{
        streamId: "job-1",
        expectedVersion: 0,
        events: ids.map((eventId) => ({ ...event(), eventId })),
      }];
      const original = await store.append(writes);
      const { events: [third] } = await store.append([write("job-1", 2)]);
      await readable(store, third.globalPosition);
      const before = await store.readAll();
      // A replay succeeds although its expected version is stale now.
      assert.deepEqual(await store.append(writes), original);
      const upper = [{
        ...writes[0],
        events: writes[0].events.map((e) => ({ ...e, eventId: e.eventId!.toUpperCase() })),
      }];
      assert.deepEqual(await store.append(upper), original);
      // Reusing some recorded ids with new events is a caller mistake.
      await assert.rejects(
        store.append([{
          streamId: "job-1",
          expectedVersion: 3,
          events: [{ ...event(), eventId: ids[0] }, event()],
        }]),
        TypeError,
      );
      await assert.rejects(
        store.append([{
          streamId: "job-2",
          expectedVersion: 0,
          events: [{ ...event(), eventId: ids[1] }],
        }]),
        TypeError,
      );
      assert.deepEqual(await store.readAll(), before);
    },
  ],
  ["append() rejects invalid input with a TypeError and writes nothing", async ({ store }) => {
    class Point {
      x = 1;
    }
    const ok = write("job-ok", 0);
    const bad: [string, unknown][] = [
      ["writes", []],
      ["events", [{ streamId: "job-1", expectedVersion: 0, events: [] }]],
      ["streamId", [{ ...ok, streamId: "" }]],
      ["expectedVersion", [{ ...ok, expectedVersion: -1 }]],
      ["appears twice", [ok, ok]],
      ...["Job.Queued", "job", "job..queued", "job.queued.", "job queued"].map((
        type,
      ) =>
        ["type", [ok, { ...ok, streamId: "job-2", events: [{ type, data: {} }] }]] as [
          string,
          unknown,
        ]
      ),
      ...[[], null, "{}", new Date(), new Point()].map((data) =>
        ["data", [{ ...ok, events: [{ type: "job.queued", data }] }]] as [string, unknown]
      ),
      ["data.log[1]", [{ ...ok, events: [event("job.logged", { log: ["ok", "nul\u0000"] })] }]],
      ["data.a\u0000b (key)", [{ ...ok, events: [event("job.logged", { ["a\u0000b"]: 1 })] }]],
      ["metadata.who", [{ ...ok, events: [{ ...event(), metadata: { who: "\ud800x" } }] }]],
      ["data.n", [{ ...ok, events: [event("job.logged", { n: NaN })] }]],
      ["eventId", [{ ...ok, events: [{ ...event(), eventId: "not-a-uuid" }] }]],
      // 3,000 levels broke the embedded store's WASM stack; 65 is one over the limit.
      ["data.v", [{ ...ok, events: [event("job.logged", { v: nested(3000) })] }]],
      ["deeper than 64", [{ ...ok, events: [event("job.logged", { v: nested(64) })] }]],
    ];
    for (const [field, writes] of bad) {
      await assert.rejects(store.append(writes as StreamAppend[]), (error: Error) => {
        assert.ok(error instanceof TypeError, `${field}: ${error}`);
        assert.ok(error.message.includes(field), `${field} not in: ${error.message}`);
        return true;
      });
    }
    assert.deepEqual(await store.readAll(), []);
    // The data object is level 1, so 63 arrays inside it are exactly the limit of 64.
    const [atLimit] = (await store.append([
      { ...ok, events: [event("job.logged", { v: nested(63) })] },
    ])).events;
    assert.deepEqual(atLimit.data, { v: nested(63) });
  }],
  [
    "append() refuses an event over 1 MiB of JSON, naming the field and size",
    async ({ store }) => {
      const MiB = 1024 * 1024;
      // {"s":"…"} is 8 bytes of JSON around the string, metadata {} is 2.
      const exact = { type: "job.logged", data: { s: "x".repeat(MiB - 10) } };
      const cases: [field: string, size: number, event: Record<string, unknown>][] = [
        ["writes[0].events[1].data", MiB + 1, {
          type: "job.logged",
          data: { s: "x".repeat(MiB - 9) },
        }],
        // 2 bytes per "é": 600,000 characters are 1.2 MB.
        ["writes[0].events[1].data", 1_200_010, {
          type: "job.logged",
          data: { s: "é".repeat(600_000) },
        }],
        [
          "writes[0].events[1].metadata",
          MiB + 15,
          { type: "job.logged", data: { a: 1 }, metadata: { m: "x".repeat(MiB) } },
        ],
      ];
      for (const [field, size, big] of cases) {
        await assert.rejects(
          store.append(
            [{ streamId: "job-1", expectedVersion: 0, events: [event(), big] }] as StreamAppend[],
          ),
          (error: Error) => {
            assert.ok(error instanceof TypeError, String(error));
            assert.ok(error.message.startsWith(`${field} is too large`), error.message);
            assert.ok(error.message.includes(`${size} bytes`), error.message);
            assert.ok(error.message.includes(`${MiB} bytes`), error.message);
            return true;
          },
        );
      }
      assert.deepEqual(await store.readStream("job-1"), []);
      const { events } = await store.append([{
        streamId: "job-1",
        expectedVersion: 0,
        events: [exact],
      }]);
      assert.equal((events[0].data.s as string).length, MiB - 10);
    },
  ],
  [
    "positions and versions read back as JS numbers from every read",
    async ({ store }) => {
      const { events } = await store.append([write("job-1", 0, 2)]);
      await readable(store, events[1].globalPosition);
      const reads = [
        events,
        await store.readStream("job-1"),
        await store.readAll(),
        await store.readChain(),
      ];
      for (const read of reads) {
        assert.equal(read.length, 2);
        for (const e of read) {
          assert.equal(typeof e.globalPosition, "number");
          assert.equal(typeof e.streamVersion, "number");
        }
      }
      assert.equal(typeof await store.currentPosition(), "number");
      const seal = await store.seal();
      for (const key of ["version", "globalPosition", "streams", "events"] as const) {
        assert.equal(typeof seal[key], "number", key);
      }
    },
  ],
  ["concurrent appends to one stream: exactly one wins per version", async ({ store }) => {
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => store.append([write("job-1", 0)])),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof WrongExpectedVersionError);
        assert.equal(r.reason.actual, 1);
      }
    }
    // Eight writers, three events each, each retrying on conflict from what it read.
    const worker = async (w: number) => {
      for (let done = 0; done < 3;) {
        const version = (await store.readStream("job-1")).length;
        try {
          await store.append([{
            streamId: "job-1",
            expectedVersion: version,
            events: [event("job.logged", { w })],
          }]);
          done++;
        } catch (error) {
          if (!(error instanceof WrongExpectedVersionError)) throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    const stream = await store.readStream("job-1");
    assert.deepEqual(
      stream.map((e) => e.streamVersion),
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
    const first = stream[0].globalPosition;
    assert.deepEqual(
      positions(stream),
      stream.map((_, i) => first + i),
      "no sequence value burned",
    );
  }],
  [
    "subscribeAll() catches up, then delivers later appends in order, exactly once",
    async (h) => {
      const { store } = h;
      const early = await store.append([write("job-1", 0, 3)]);
      const { seen, sub } = record(h, { batchSize: 2, pollIntervalMs: 60_000 });
      await sub.waitFor(early.events[2].globalPosition, { signal: AbortSignal.timeout(WAIT_MS) });
      await store.append([write("job-2", 0)]);
      await store.append([write("job-1", 3, 3), write("job-3", 0)]);
      const last = await store.append([write("job-2", 1)]);
      await sub.waitFor(last.events[0].globalPosition, { signal: AbortSignal.timeout(WAIT_MS) });
      await sub.caughtUp({ signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(seen, await store.readAll());
      assert.equal(new Set(positions(seen)).size, 9);
      assert.equal(sub.position, last.events[0].globalPosition);
      await sub.waitFor(early.events[0].globalPosition); // already handled: resolves at once
      await assert.rejects(sub.waitFor(sub.position + 1000), RangeError); // not recorded
      await sub.close();
      await sub.done;
    },
  ],
  ["close() lets the running batch finish and rejects pending waits", async ({ store, defer }) => {
    const first = await store.append([write("job-1", 0)]);
    let entered!: () => void, release!: () => void;
    const inHandler = new Promise<void>((r) => entered = r);
    const gate = new Promise<void>((r) => release = r);
    const seen: RecordedEvent[] = [];
    const sub = subscribeAll(store, {
      async onEvents(events) {
        entered();
        await gate;
        seen.push(...events);
      },
    });
    defer(() => sub.close());
    defer(() => release()); // runs first: a failed assertion must not leave the handler stuck
    await inHandler;
    const second = await store.append([write("job-1", 1)]);
    const forFirst = sub.waitFor(first.events[0].globalPosition);
    const forSecond = sub.waitFor(second.events[0].globalPosition);
    const closing = sub.close();
    release();
    await closing;
    await forFirst;
    await assert.rejects(forSecond, (e: DOMException) => e.name === "AbortError");
    await assert.rejects(sub.caughtUp(), (e: DOMException) => e.name === "AbortError");
    assert.deepEqual(seen, first.events);
    assert.equal(sub.position, first.events[0].globalPosition);
  }],
  [
    "subscribeAll() starts after its checkpoint and keeps it on a failing handler",
    async (h) => {
      const { store } = h;
      const { events } = await store.append([write("job-1", 0, 4)]);
      const { seen, sub } = record(h, { after: events[1].globalPosition });
      await sub.caughtUp({ signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(seen, events.slice(2));
      await sub.close();
      const failing = subscribeAll(store, {
        after: events[1].globalPosition,
        onEvents: () => Promise.reject(new Error("projection failed")),
      });
      await assert.rejects(failing.done, /projection failed/);
      assert.equal(failing.position, events[1].globalPosition);
    },
  ],
];

const postgresOnly: Case[] = [
  [
    "readAll() does not pass an event of a transaction still open (gap-safe)",
    async ({ store, raw, defer }) => {
      const { events: [start] } = await store.append([write("job-0", 0)]);
      let insertedA!: () => void, commitA!: () => void;
      const inserted = new Promise<void>((r) => insertedA = r);
      const commit = new Promise<void>((r) => commitA = r);
      const txA = raw!.begin(async (tx) => {
        await tx.unsafe(
          `insert into events (stream_id, stream_version, event_id, type, data, hash)
         values ('job-a', 1, gen_random_uuid(), 'job.queued', '{}', sha256(''))`,
        );
        insertedA();
        await commit;
      });
      defer(() => txA);
      defer(() => commitA()); // runs first, so a failed assertion never leaves A open
      await inserted;
      const b = await store.append([write("job-b", 0)]);
      const naive = await raw!.unsafe(
        "select global_position from events order by global_position",
      );
      assert.equal(naive.length, 2, "a reader by position alone sees B now, and would skip A");
      assert.deepEqual(await store.readAll({ after: start.globalPosition }), []);
      assert.deepEqual(await store.readAll({ streamId: "job-b" }), []);
      commitA();
      await txA;
      await readable(store, b.events[0].globalPosition);
      const after = await store.readAll({ after: start.globalPosition });
      assert.deepEqual(after.map((e) => e.streamId), ["job-a", "job-b"]);
      assert.equal(after[1].globalPosition, b.events[0].globalPosition);
      assert.ok(after[0].globalPosition < after[1].globalPosition);
      assert.deepEqual(await store.readAll({ after: after[1].globalPosition }), []);
    },
  ],
  [
    "readAll() orders by transaction, then position, and pages from either",
    async (h) => {
      const { store, raw } = h;
      let commitA!: () => void;
      const commit = new Promise<void>((r) => commitA = r);
      let xidTaken!: () => void;
      const taken = new Promise<void>((r) => xidTaken = r);
      const txA = raw!.begin(async (tx) => {
        await tx.unsafe("select pg_current_xact_id()"); // A's id is older than B's
        xidTaken();
        await commit;
        await tx.unsafe(
          `insert into events (stream_id, stream_version, event_id, type, data, hash)
         values ('job-a', 1, gen_random_uuid(), 'job.queued', '{}', sha256(''))`,
        );
      });
      h.defer(() => txA);
      h.defer(() => commitA());
      await taken;
      const { seen, sub } = record(h, { pollIntervalMs: 60_000 });
      const b = await store.append([write("job-b", 0)]);
      commitA();
      await txA;
      await readable(store, b.events[0].globalPosition); // B comes last: A's id is older
      const all = await store.readAll();
      assert.deepEqual(all.map((e) => e.streamId), ["job-a", "job-b"]);
      assert.ok(all[0].globalPosition > all[1].globalPosition);
      assert.deepEqual(await store.readAll({ after: all[0].globalPosition }), [all[1]]);
      assert.deepEqual(await store.readAll({ after: all[1].globalPosition }), []);
      assert.equal(await store.currentPosition(), b.events[0].globalPosition);
      // A's insert sent no NOTIFY: ask for a read that starts now.
      await sub.caughtUp({ signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(seen, all);
      await sub.close();
    },
  ],
  ["subscribeAll() wakes up on NOTIFY from another process", async (h) => {
    const { openAnother } = h;
    const other = await openAnother!();
    const { seen, sub } = record(h, { pollIntervalMs: 60_000 });
    await sub.caughtUp({ signal: AbortSignal.timeout(WAIT_MS) });
    const { events } = await other.append([write("job-1", 0, 2)]);
    await sub.waitFor(events[1].globalPosition, { signal: AbortSignal.timeout(WAIT_MS) });
    assert.deepEqual(seen, events);
    await sub.close();
  }],
  [
    "subscribeAll() re-reads soon when an older open transaction held events back",
    async (h) => {
      const other = await h.openAnother!();
      let commitC!: () => void;
      const commit = new Promise<void>((r) => commitC = r);
      let xidTaken!: () => void;
      const taken = new Promise<void>((r) => xidTaken = r);
      // C writes nothing to events, and its end sends no NOTIFY; it only holds xmin back.
      const txC = h.raw!.begin(async (tx) => {
        await tx.unsafe("select pg_current_xact_id()");
        xidTaken();
        await commit;
      });
      h.defer(() => txC);
      h.defer(() => commitC());
      await taken;
      const { seen, sub } = record(h, { pollIntervalMs: 60_000 });
      await sub.caughtUp({ signal: AbortSignal.timeout(WAIT_MS) });
      const { events } = await other.append([write("job-1", 0)]);
      assert.equal(await h.store.hasHeldBackEvents(), true);
      // The one-statement read says the same, and leaves the held-back event out.
      const held = await h.store.readAllPage({ after: sub.position });
      assert.deepEqual(held, { events: [], heldBack: true });
      commitC();
      await txC;
      await sub.waitFor(events[0].globalPosition, { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(seen, events);
      const after = await h.store.readAllPage();
      assert.equal(after.heldBack, false);
      assert.deepEqual(positions(after.events), positions(await h.store.readAll()));
    },
  ],
  ["subscribeAll() polls when no wake-up comes", async (h) => {
    const { openAnother } = h;
    const silent = await openAnother!({ notify: false });
    const { seen, sub } = record(h, { pollIntervalMs: 20 });
    await sub.caughtUp({ signal: AbortSignal.timeout(WAIT_MS) });
    const { events } = await silent.append([write("job-1", "any")]);
    await sub.waitFor(events[0].globalPosition, { signal: AbortSignal.timeout(WAIT_MS) });
    assert.deepEqual(positions(seen), positions(events));
    await sub.close();
  }],
  ["subscribeAll() re-listens after losing its LISTEN connection and misses nothing", async (h) => {
    const other = await h.openAnother!();
    const { seen, sub } = record(h, { pollIntervalMs: 60_000 });
    const first = await other.append([write("job-1", 0)]);
    await sub.waitFor(first.events[0].globalPosition, { signal: AbortSignal.timeout(WAIT_MS) });
    const killed = await h.raw!.unsafe(
      `select pg_terminate_backend(pid) from pg_stat_activity
       where application_name = $1 and query ilike 'listen%'`,
      [h.applicationName!],
    );
    assert.equal(killed.length, 1);
    const second = await other.append([write("job-1", 1)]);
    await sub.waitFor(second.events[0].globalPosition, { signal: AbortSignal.timeout(WAIT_MS) });
    const third = await other.append([write("job-1", 2)]);
    await sub.waitFor(third.events[0].globalPosition, { signal: AbortSignal.timeout(WAIT_MS) });
    assert.deepEqual(seen, await h.store.readAll());
    await sub.close();
  }],
];

for (const backend of [pglite, postgresBackend]) {
  const cases = backend === postgresBackend ? [...contract, ...postgresOnly] : contract;
  for (const [name, run] of cases) {
    Deno.test(`${backend.name}: ${name}`, async () => {
      const { harness, dispose } = await backend.open();
      const cleanups: (() => unknown)[] = [];
      try {
        await run({ ...harness, defer: (cleanup) => cleanups.push(cleanup) });
      } finally {
        for (const cleanup of cleanups.reverse()) await cleanup();
        await dispose();
      }
    });
  }
}

Deno.test("pglite: a store reopened from its data directory keeps its events", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    const store = await openEventStore({ dataDir });
    const { events } = await store.append([write("job-1", 0, 2)]);
    await store.close();
    const reopened = await openEventStore({ dataDir });
    try {
      assert.deepEqual(await reopened.readAll(), events);
      assert.equal((await reopened.append([write("job-1", 2)])).versions["job-1"], 3);
    } finally {
      await reopened.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** The `events` table as the first release created it: no `hash` column. */
const PRE_HASH_TABLE = `create table events (
  global_position bigserial primary key,
  stream_id text not null,
  stream_version bigint not null check (stream_version > 0),
  event_id uuid not null unique,
  type text not null,
  data jsonb not null,
  metadata jsonb not null default '{}',
  recorded_at timestamptz not null default now(),
  transaction_id xid8 not null default pg_current_xact_id(),
  constraint events_stream_version_key unique (stream_id, stream_version)
)`;

const preHashClients: [string, () => Promise<{ client: SqlClient; drop(): Promise<void> }>][] = [
  ["pglite", async () => {
    const client = await createPgliteClient({ dataDir: "memory://" });
    return { client, drop: () => Promise.resolve() };
  }],
  ["postgres", async () => {
    const schema = `events_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const client = await createPostgresClient({ url: DATABASE_URL, schema, max: 2 });
    return {
      client,
      drop: async () => {
        const admin = await createPostgresClient({ url: DATABASE_URL, max: 1 });
        try {
          await admin.query(`drop schema if exists "${schema}" cascade`);
        } finally {
          await admin.close();
        }
      },
    };
  }],
];

for (const [name, open] of preHashClients) {
  Deno.test(`${name}: migrating a table from before the hash chain fills in every hash`, async () => {
    const { client, drop } = await open();
    let store: SqlEventStore | undefined;
    try {
      await client.query(PRE_HASH_TABLE);
      await client.query(
        `insert into events (stream_id, stream_version, event_id, type, data, metadata)
         values ('job-1', 1, gen_random_uuid(), 'job.queued', '{"b": 1.0, "a": [1e2]}', '{}'),
                ('job-2', 1, gen_random_uuid(), 'job.queued', '{}', '{"by": "x"}'),
                ('job-1', 2, gen_random_uuid(), 'job.started', '{"z": "é"}', '{}')`,
      );
      await migrateEventsSchema(client);
      await migrateEventsSchema(client); // idempotent
      store = createSqlEventStore(client);
      await store.append([write("job-1", 2)]);
      const chains = await store.readChain();
      assert.deepEqual(chains.map((e) => [e.streamId, e.streamVersion]), [
        ["job-1", 1],
        ["job-1", 2],
        ["job-1", 3],
        ["job-2", 1],
      ]);
      let previous = GENESIS_HASH;
      for (const e of chains) {
        if (e.streamVersion === 1) previous = GENESIS_HASH;
        assert.equal(e.hash, eventHash(previous, e), `${e.streamId} ${e.streamVersion}`);
        previous = e.hash!;
      }
      await assert.rejects(
        client.query(
          `insert into events (stream_id, stream_version, event_id, type, data)
           values ('job-3', 1, gen_random_uuid(), 'job.queued', '{}')`,
        ),
        /hash/,
        "new rows need a hash",
      );
    } finally {
      await (store ?? client).close();
      await drop();
    }
  });
}

/** `levels` arrays nested in each other around the number 1. */
function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}
