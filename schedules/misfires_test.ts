import assert from "node:assert/strict";
import { MAX_CATCH_UP_RUNS, missedTicks } from "./_misfires.ts";
import type { NextRunsSpec } from "./next_runs.ts";

const EVERY_SECOND: NextRunsSpec = {
  frequency: "cron",
  cron_expression: "* * * * * *",
  timezone: "UTC",
};
const now = Temporal.Instant.from("2036-01-01T00:00:00.500Z");
const down = (policy: "skip" | "run_once" | "run_all", catch_up_window: number) => ({
  cursor: "2026-01-01T00:00:00Z", // ten years of every-second ticks missed
  misfire_policy: policy,
  catch_up_window,
});

Deno.test("missedTicks(): ten years down, every second: skip runs none", () => {
  assert.deepEqual(missedTicks(EVERY_SECOND, down("skip", 3600), now), []);
});

Deno.test("missedTicks(): ten years down, every second: run_once runs the latest tick only", () => {
  const ticks = missedTicks(EVERY_SECOND, down("run_once", 3600), now);
  assert.deepEqual(ticks.map(String), ["2036-01-01T00:00:00Z"]);
});

Deno.test("missedTicks(): run_all is bounded by its window, and by MAX_CATCH_UP_RUNS whatever the window", () => {
  const hour = missedTicks(EVERY_SECOND, down("run_all", 3600), now);
  assert.equal(hour.length, 3600);
  assert.equal(hour[0].toString(), "2035-12-31T23:00:01Z");
  assert.equal(hour.at(-1)!.toString(), "2036-01-01T00:00:00Z");
  const all = missedTicks(EVERY_SECOND, down("run_all", 20 * 365 * 86_400), now);
  assert.equal(all.length, MAX_CATCH_UP_RUNS);
  assert.equal(all[0].toString(), "2026-01-01T00:00:01Z");
});

Deno.test("missedTicks(): a once schedule missed years ago still runs once under run_once", () => {
  const once: NextRunsSpec = { frequency: "once", timezone: "UTC", anchor: "2027-06-01T00:00:00Z" };
  assert.deepEqual(
    missedTicks(once, down("run_once", 3600), now).map(String),
    ["2027-06-01T00:00:00Z"],
  );
});
