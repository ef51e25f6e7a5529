/**
 * `scanAll()` (the bulk read of replays and start-up) returns exactly what `readAll()`
 * returns, in the same order, from any checkpoint, and filters by `recorded_at`.
 */
import assert from "node:assert/strict";
import { type RecordedEvent, subscribeAll } from "../events/mod.ts";
import { BACKENDS } from "./_harness.ts";

async function collect(pages: AsyncIterable<RecordedEvent[]>): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for await (const page of pages) {
    assert.ok(page.length > 0, "scanAll yields no empty page");
    all.push(...page);
  }
  return all;
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] scanAll() returns readAll()'s events in its order, pages of any size, from any checkpoint`, async () => {
    const { store, drop } = await backend.open();
    try {
      let lastPosition = 0;
      for (let i = 0; i < 12; i++) {
        const { events } = await store.append([
          {
            streamId: `job-${i % 5}`,
            expectedVersion: "any",
            events: [
              {
                type: "job.queued",
                data: { n: i, text: 'Café ☕ "quoted" \\ back\nline', big: 1e21 },
              },
              {
                type: "job.logged",
                data: { n: i, nested: { a: [1, 2.5, null, true] } },
                metadata: { by: "t" },
              },
            ],
          },
          {
            streamId: `robot-${i % 2}`,
            expectedVersion: "any",
            events: [{ type: "robot.connected", data: { i } }],
          },
        ]);
        lastPosition = Math.max(lastPosition, ...events.map((e) => e.globalPosition));
      }
      // Wait until every event is past the gap-safe horizon (other sessions' transactions on
      // a shared server hold it back for a while).
      const sub = subscribeAll(store, { onEvents: () => {} });
      await sub.waitFor(lastPosition);
      await sub.close();
      const expected = await store.readAll({ limit: 1000 });
      assert.equal(expected.length, 36);
      for (const pageSize of [1, 7, 1000]) {
        for (const format of ["json", "rows"] as const) {
          assert.deepEqual(await collect(store.scanAll({ pageSize, format })), expected);
        }
      }
      const from = expected[10].globalPosition;
      assert.deepEqual(
        await collect(store.scanAll({ after: from, pageSize: 4 })),
        expected.slice(11),
      );
      const last = expected[expected.length - 1].globalPosition;
      assert.deepEqual(await collect(store.scanAll({ after: last })), []);
      await assert.rejects(collect(store.scanAll({ after: last + 1000 })), RangeError);
      await assert.rejects(collect(store.scanAll({ pageSize: 0 })), RangeError);

      // until: at millisecond precision, like recordedAt.
      const cut = expected[20].recordedAt;
      assert.deepEqual(
        await collect(store.scanAll({ until: cut, pageSize: 5 })),
        expected.filter((e) => e.recordedAt.getTime() <= cut.getTime()),
      );
      assert.deepEqual(await collect(store.scanAll({ until: new Date(0) })), []);

      // A consumer may stop early.
      for await (const page of store.scanAll({ pageSize: 3 })) {
        assert.equal(page.length, 3);
        break;
      }
    } finally {
      await store.close();
      await drop();
    }
  });
}
