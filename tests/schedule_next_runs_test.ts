/**
 * The next-run computation against the cases of issue 4 (expected values verified
 * independently), plus validation errors.
 */
import assert from "node:assert/strict";
import {
  InvalidScheduleError,
  nextRuns,
  type NextRunsSpec,
  validateSpec,
} from "../schedules/mod.ts";

const cron = (cron_expression: string, timezone = "UTC"): NextRunsSpec => ({
  frequency: "cron",
  cron_expression,
  timezone,
});
const iso = (list: Temporal.Instant[]) => list.map((i) => i.toString());
const at = (s: string) => Temporal.Instant.from(s);

const CASES: { name: string; spec: NextRunsSpec; after: string; expect: string[] }[] = [
  {
    name: "30 2 * * * in New York runs once at the end of the spring-forward gap",
    spec: cron("30 2 * * *", "America/New_York"),
    after: "2026-03-08T06:30:00Z",
    expect: ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"],
  },
  {
    name: "0 10 * * * in Chicago keeps 10:00 local across spring forward",
    spec: cron("0 10 * * *", "America/Chicago"),
    after: "2025-03-08T15:00:00Z",
    expect: ["2025-03-08T16:00:00Z", "2025-03-09T15:00:00Z", "2025-03-10T15:00:00Z"],
  },
  {
    name: "0 7-8 * * * in Los Angeles across spring forward",
    spec: cron("0 7-8 * * *", "America/Los_Angeles"),
    after: "2020-03-07T16:00:00Z",
    expect: [
      "2020-03-08T14:00:00Z",
      "2020-03-08T15:00:00Z",
      "2020-03-09T14:00:00Z",
      "2020-03-09T15:00:00Z",
    ],
  },
  {
    name: "30 1 * * * in New York runs once, at the first 01:30, on fall back",
    spec: cron("30 1 * * *", "America/New_York"),
    after: "2026-10-31T16:00:00Z",
    expect: ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
  },
  {
    name: "*/15 * * * * in New York runs in both copies of the fall-back hour",
    spec: cron("*/15 * * * *", "America/New_York"),
    after: "2026-11-01T04:59:59Z",
    expect: Array.from(
      { length: 9 },
      (_, i) => at("2026-11-01T05:00:00Z").add({ minutes: 15 * i }).toString(),
    ),
  },
  {
    name: "0 0 13 * 5 matches the 13th or a Friday (Vixie OR)",
    spec: cron("0 0 13 * 5"),
    after: "2023-01-01T00:00:00Z",
    expect: [6, 13, 20, 27].map((d) => `2023-01-${String(d).padStart(2, "0")}T00:00:00Z`)
      .concat(["2023-02-03T00:00:00Z", "2023-02-10T00:00:00Z", "2023-02-13T00:00:00Z"])
      .concat(["2023-02-17T00:00:00Z"]),
  },
  {
    name: "0 0 0 29 2 * (6 fields) runs on leap days only",
    spec: cron("0 0 0 29 2 *"),
    after: "2024-12-13T00:00:00Z",
    expect: ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
  },
  {
    name: "*/7 * * * * restarts its step each hour",
    spec: cron("*/7 * * * *"),
    after: "2026-01-01T00:50:00Z",
    expect: ["2026-01-01T00:56:00Z", "2026-01-01T01:00:00Z", "2026-01-01T01:07:00Z"],
  },
  {
    name: "0 9 * * 1 fires on Mondays",
    spec: cron("0 9 * * 1"),
    after: "2026-11-29T00:00:00Z", // a Sunday
    expect: ["2026-11-30T09:00:00Z", "2026-12-07T09:00:00Z"],
  },
  {
    name: "0 9 * * MON and 0 9 * * 1 agree",
    spec: cron("0 9 * * MON"),
    after: "2026-11-29T00:00:00Z",
    expect: ["2026-11-30T09:00:00Z", "2026-12-07T09:00:00Z"],
  },
  {
    name: "weekday 0 and 7 are both Sunday",
    spec: cron("0 12 * * 0,7"),
    after: "2026-11-23T00:00:00Z",
    expect: ["2026-11-29T12:00:00Z", "2026-12-06T12:00:00Z"],
  },
  {
    name: "month names are accepted",
    spec: cron("0 0 1 JAN,jul *"),
    after: "2026-02-01T00:00:00Z",
    expect: ["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"],
  },
  {
    name: "0 0 * * * * in UTC every hour",
    spec: cron("0 0 * * * *"),
    after: "2025-10-04T15:30:00Z",
    expect: ["2025-10-04T16:00:00Z", "2025-10-04T17:00:00Z", "2025-10-04T18:00:00Z"],
  },
  {
    name: "daily follows the anchor's wall-clock time across DST, not 86,400 s",
    spec: { frequency: "daily", timezone: "Europe/Berlin", anchor: "2026-03-27T08:15:00Z" },
    after: "2026-03-27T08:15:00Z",
    expect: ["2026-03-28T08:15:00Z", "2026-03-29T07:15:00Z", "2026-03-30T07:15:00Z"],
  },
  {
    name: "hourly fires at the anchor's minute",
    spec: { frequency: "hourly", timezone: "UTC", anchor: "2026-01-01T10:20:30Z" },
    after: "2026-01-01T00:00:00Z",
    expect: ["2026-01-01T10:20:30Z", "2026-01-01T11:20:30Z"],
  },
  {
    name: "weekly fires on the anchor's weekday in its zone",
    // Monday 2026-11-30 00:30 in Tokyo is Sunday 15:30 UTC.
    spec: { frequency: "weekly", timezone: "Asia/Tokyo", anchor: "2026-11-29T15:30:00Z" },
    after: "2026-11-29T15:30:00Z",
    expect: ["2026-12-06T15:30:00Z", "2026-12-13T15:30:00Z"],
  },
  {
    name: "monthly on the 31st clamps to the month's last day",
    spec: { frequency: "monthly", timezone: "UTC", anchor: "2026-01-31T06:00:00Z" },
    after: "2026-01-31T06:00:00Z",
    expect: ["2026-02-28T06:00:00Z", "2026-03-31T06:00:00Z", "2026-04-30T06:00:00Z"],
  },
  {
    name: "once fires at its anchor only",
    spec: { frequency: "once", timezone: "UTC", anchor: "2026-05-01T00:00:00Z" },
    after: "2026-01-01T00:00:00Z",
    expect: ["2026-05-01T00:00:00Z"],
  },
  {
    name: "once in the past never fires again",
    spec: { frequency: "once", timezone: "UTC", anchor: "2026-05-01T00:00:00Z" },
    after: "2026-05-01T00:00:00Z",
    expect: [],
  },
];

for (const c of CASES) {
  Deno.test(`nextRuns(): ${c.name}`, () => {
    assert.deepEqual(iso(nextRuns(c.spec, at(c.after), c.expect.length || 3)), c.expect);
  });
}

Deno.test("nextRuns(): */15 in New York from 05:00Z to 07:00Z inclusive is 9 fires 15 min apart", () => {
  const runs = nextRuns(cron("*/15 * * * *", "America/New_York"), at("2026-11-01T04:59:59Z"), 20)
    .filter((r) => Temporal.Instant.compare(r, at("2026-11-01T07:00:00Z")) <= 0);
  assert.equal(runs.length, 9);
  for (let i = 1; i < runs.length; i++) {
    assert.equal(runs[i].since(runs[i - 1]).total("minutes"), 15);
  }
});

Deno.test("nextRuns(): every run is strictly after `after`, also from inside an overlap", () => {
  const spec = cron("*/15 * * * *", "America/New_York");
  const after = at("2026-11-01T05:20:00Z"); // 01:20 EDT, first copy of the repeated hour
  const runs = iso(nextRuns(spec, after, 4));
  assert.deepEqual(runs, [
    "2026-11-01T05:30:00Z",
    "2026-11-01T05:45:00Z",
    "2026-11-01T06:00:00Z",
    "2026-11-01T06:15:00Z",
  ]);
});

const INVALID: { name: string; spec: NextRunsSpec; field: string; pattern: RegExp }[] = [
  {
    name: "0 0 30 2 * never fires",
    spec: cron("0 0 30 2 *"),
    field: "cron_expression",
    pattern: /never fires/,
  },
  {
    name: "a bad field",
    spec: cron("61 * * * *"),
    field: "cron_expression",
    pattern: /does not parse/,
  },
  {
    name: "four fields",
    spec: cron("* * * *"),
    field: "cron_expression",
    pattern: /5 or 6 fields/,
  },
  {
    name: "an unknown zone",
    spec: cron("* * * * *", "Mars/Olympus"),
    field: "timezone",
    pattern: /IANA/,
  },
  {
    name: "an unknown frequency",
    spec: { frequency: "yearly" as "once", timezone: "UTC", anchor: "2026-01-01T00:00:00Z" },
    field: "frequency",
    pattern: /frequency must be one of/,
  },
  {
    name: "daily without an anchor",
    spec: { frequency: "daily", timezone: "UTC" },
    field: "anchor",
    pattern: /required/,
  },
];

for (const c of INVALID) {
  Deno.test(`validateSpec(): refuses ${c.name}, naming the field`, () => {
    assert.throws(() => validateSpec(c.spec, at("2026-01-01T00:00:00Z")), (e: unknown) => {
      assert.ok(e instanceof InvalidScheduleError);
      assert.equal(e.field, c.field);
      assert.match(e.message, c.pattern);
      return true;
    });
  });
}
