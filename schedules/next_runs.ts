/**
 * The pure next-run computation of schedules: cron expressions and the interval frequencies
 * evaluated in wall-clock time of an IANA zone with the Temporal API. Nothing here reads the
 * process's own time zone or clock.
 *
 * Semantics (pinned in `tests/schedule_next_runs_test.ts`):
 * - Day of month and day of week both restricted (neither starts with `*`): a day matches when
 *   either matches (Vixie cron). Weekday 0 and 7 are Sunday; names (`MON`, `JAN`) are accepted.
 * - Spring-forward gap: a fixed-hour job whose wall-clock time does not exist runs once, at
 *   the first instant after the gap (ISC cron); a job with `*` or a step in the hour field
 *   follows real time (the missing times are skipped).
 * - Fall-back overlap: a fixed-hour job runs once, at the first occurrence; a job with `*` or
 *   a step in the hour field runs in both copies of the hour.
 *
 * @module
 */
import { parseCronExpression } from "cron-schedule";

/** How often a schedule fires. */
export type Frequency = "once" | "hourly" | "daily" | "weekly" | "monthly" | "cron";

/** The frequencies, for validation. */
export const FREQUENCIES: readonly Frequency[] = [
  "once",
  "hourly",
  "daily",
  "weekly",
  "monthly",
  "cron",
];

/** What {@linkcode nextRuns} needs of a schedule. */
export interface NextRunsSpec {
  frequency: Frequency;
  /** 5 fields (minute hour day month weekday) or 6 (seconds first); for `cron` only. */
  cron_expression?: string | null;
  /** IANA zone, e.g. `"America/New_York"`. */
  timezone: string;
  /**
   * The wall-clock anchor of the interval frequencies, as an instant (RFC 3339 string,
   * `Temporal.Instant` or `Date`): `once` fires at it; `hourly` at its minute and second,
   * `daily` at its time of day, `weekly` on its weekday, `monthly` on its day of month
   * (clamped to the month's last day), all in `timezone`; none fires before it.
   * Required for every frequency but `cron` (where it is ignored).
   */
  anchor?: string | Temporal.Instant | Date | null;
}

/** Why a schedule spec was refused; `field` names the offending field. */
export class InvalidScheduleError extends Error {
  override name = "InvalidScheduleError";
  /** The offending field, e.g. `"cron_expression"`. */
  readonly field: string;
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.field = field;
  }
}

/** Furthest a search for the next run looks ahead, in years. */
const HORIZON_YEARS = 30;
/** Largest backward offset change the search allows for (fall-back overlap), in seconds. */
const MARGIN_SECONDS = 3 * 3600;

interface Matcher {
  seconds: readonly number[];
  minutes: readonly number[];
  hours: readonly number[];
  /** Months 1-12. */
  months: ReadonlySet<number>;
  day(year: number, month: number, day: number): boolean;
  /** The hour field has `*` or a step: follow real time through DST changes. */
  followsRealTime: boolean;
  /** Runs before this instant (epoch ns) are not produced. */
  notBefore?: bigint;
  /** At most one run (`once`). */
  once?: boolean;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** 0 = Sunday … 6 = Saturday, from the calendar alone (no zone involved). */
function weekday(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay();
}

function toInstant(value: string | Temporal.Instant | Date, field: string): Temporal.Instant {
  if (value instanceof Temporal.Instant) return value;
  if (value instanceof Date) return Temporal.Instant.fromEpochMilliseconds(value.getTime());
  try {
    return Temporal.Instant.from(value);
  } catch (cause) {
    throw new InvalidScheduleError(
      field,
      `${field} must be an RFC 3339 instant with an offset, got ${JSON.stringify(value)}`,
      { cause },
    );
  }
}

/**
 * Checks that `timezone` is an IANA zone Temporal knows.
 * @throws {InvalidScheduleError} naming `timezone` when it is not.
 */
export function validateTimeZone(timezone: unknown): string {
  if (typeof timezone !== "string" || timezone === "") {
    throw new InvalidScheduleError("timezone", `timezone must be an IANA zone name`);
  }
  try {
    Temporal.Now.instant().toZonedDateTimeISO(timezone);
  } catch (cause) {
    throw new InvalidScheduleError(
      "timezone",
      `timezone ${JSON.stringify(timezone)} is not a known IANA zone`,
      { cause },
    );
  }
  return timezone;
}

/**
 * Checks that `timezone`, as a client gives it for a schedule, is an IANA zone name.
 * Fixed offsets (`+05:30`), which Temporal also takes as zone ids, are refused: a
 * schedule's wall-clock times follow a place's rules (daylight saving time included), which
 * an offset does not have. (Stored schedules are not re-checked: see
 * {@linkcode validateTimeZone}.)
 * @throws {InvalidScheduleError} naming `timezone`.
 */
export function validateZoneName(timezone: unknown): string {
  if (typeof timezone === "string" && /^[+\-\u2212]\d/.test(timezone)) {
    throw new InvalidScheduleError(
      "timezone",
      `timezone must be an IANA zone name such as Europe/Paris or UTC, not a fixed offset ` +
        `like ${JSON.stringify(timezone)}`,
    );
  }
  return validateTimeZone(timezone);
}

function cronMatcher(expression: unknown): Matcher {
  if (typeof expression !== "string" || expression.trim() === "") {
    throw new InvalidScheduleError(
      "cron_expression",
      "cron_expression is required when frequency is cron",
    );
  }
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new InvalidScheduleError(
      "cron_expression",
      `cron_expression must have 5 or 6 fields, got ${fields.length} in ${
        JSON.stringify(expression)
      }`,
    );
  }
  let cron;
  try {
    cron = parseCronExpression(fields.join(" "));
  } catch (cause) {
    throw new InvalidScheduleError(
      "cron_expression",
      `cron_expression ${JSON.stringify(expression)} does not parse: ${(cause as Error).message}`,
      { cause },
    );
  }
  const [dom, , dow] = fields.slice(-3);
  const hour = fields[fields.length - 4];
  const days = new Set(cron.days);
  const weekdays = new Set(cron.weekdays);
  // Vixie cron: when either day field starts with `*`, both must match; otherwise either.
  const either = !dom.startsWith("*") && !dow.startsWith("*");
  return {
    seconds: cron.seconds,
    minutes: cron.minutes,
    hours: cron.hours,
    months: new Set(cron.months.map((m) => m + 1)),
    day: (y, m, d) =>
      either
        ? days.has(d) || weekdays.has(weekday(y, m, d))
        : days.has(d) && weekdays.has(weekday(y, m, d)),
    followsRealTime: /[*/]/.test(hour),
  };
}

const ALL_MONTHS = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
const EVERY_HOUR = Array.from({ length: 24 }, (_, i) => i);

function intervalMatcher(spec: NextRunsSpec): Matcher {
  if (spec.anchor === undefined || spec.anchor === null) {
    throw new InvalidScheduleError(
      "anchor",
      `anchor is required when frequency is ${spec.frequency}`,
    );
  }
  const instant = toInstant(spec.anchor, "anchor");
  const wall = instant.toZonedDateTimeISO(spec.timezone);
  const base = {
    seconds: [wall.second],
    minutes: [wall.minute],
    hours: [wall.hour],
    months: ALL_MONTHS,
    followsRealTime: false,
    notBefore: instant.epochNanoseconds,
  };
  switch (spec.frequency) {
    case "once":
      return { ...base, day: () => true, once: true };
    case "hourly":
      return { ...base, hours: EVERY_HOUR, followsRealTime: true, day: () => true };
    case "daily":
      return { ...base, day: () => true };
    case "weekly": {
      const dow = wall.dayOfWeek % 7;
      return { ...base, day: (y, m, d) => weekday(y, m, d) === dow };
    }
    default: {
      const dom = wall.day;
      return { ...base, day: (y, m, d) => d === Math.min(dom, daysInMonth(y, m)) };
    }
  }
}

function matcherOf(spec: NextRunsSpec): Matcher {
  if (!FREQUENCIES.includes(spec.frequency)) {
    throw new InvalidScheduleError(
      "frequency",
      `frequency must be one of ${FREQUENCIES.join(", ")}, got ${JSON.stringify(spec.frequency)}`,
    );
  }
  validateTimeZone(spec.timezone);
  return spec.frequency === "cron" ? cronMatcher(spec.cron_expression) : intervalMatcher(spec);
}

/** Smallest element of sorted `values` that is >= `from`, or undefined. */
function atLeast(values: readonly number[], from: number): number | undefined {
  for (const v of values) if (v >= from) return v;
  return undefined;
}

/**
 * The first matching wall-clock time at or after `start`, or undefined past `endYear`.
 * Works on plain calendar fields: no zone is involved.
 */
function nextWallMatch(m: Matcher, start: Temporal.PlainDateTime, endYear: number) {
  let { year: y, month: mo, day: d, hour: h, minute: mi, second: s } = start;
  const nextDay = () => {
    d++, h = 0, mi = 0, s = 0;
    if (d > daysInMonth(y, mo)) (d = 1), mo++;
    if (mo > 12) (mo = 1), y++;
  };
  while (y <= endYear) {
    if (!m.months.has(mo)) {
      (mo = mo + 1), (d = 1), (h = 0), (mi = 0), (s = 0);
      if (mo > 12) (mo = 1), y++;
      continue;
    }
    if (!m.day(y, mo, d)) {
      nextDay();
      continue;
    }
    const hh = atLeast(m.hours, h);
    if (hh === undefined) {
      nextDay();
      continue;
    }
    if (hh !== h) (h = hh), (mi = 0), (s = 0);
    const mm = atLeast(m.minutes, mi);
    if (mm === undefined) {
      (h = h + 1), (mi = 0), (s = 0);
      if (h > 23) nextDay();
      continue;
    }
    if (mm !== mi) (mi = mm), (s = 0);
    const ss = atLeast(m.seconds, s);
    if (ss === undefined) {
      (mi = mi + 1), (s = 0);
      if (mi > 59) (mi = 0), (h = h + 1);
      if (h > 23) nextDay();
      continue;
    }
    return new Temporal.PlainDateTime(y, mo, d, h, mi, ss);
  }
  return undefined;
}

/**
 * The instants a wall-clock time stands for in `zone`: `first` always; `second` in a fall-back
 * overlap; `gap` when the time does not exist (then `first` is the instant the gap ends).
 */
function instantsOf(wall: Temporal.PlainDateTime, zone: string) {
  const earlier = wall.toZonedDateTime(zone, { disambiguation: "earlier" });
  if (!earlier.toPlainDateTime().equals(wall)) {
    const end = earlier.getTimeZoneTransition("next");
    return { first: (end ?? earlier).toInstant(), gap: true };
  }
  const later = wall.toZonedDateTime(zone, { disambiguation: "later" });
  const second = later.epochNanoseconds !== earlier.epochNanoseconds
    ? later.toInstant()
    : undefined;
  return { first: earlier.toInstant(), second, gap: false };
}

/**
 * The next `count` runs of a schedule strictly after `after`, in increasing order.
 *
 * @param spec the schedule's frequency, cron expression, zone and anchor.
 * @param after runs at or before this instant are not returned.
 * @param count how many runs, an integer from 0 to 1000.
 * @returns up to `count` instants; fewer when the schedule ends (`once`) or no run falls
 *   within 30 years.
 * @throws {InvalidScheduleError} when the spec is invalid (`field` names what).
 * @throws {RangeError} when `count` is not an integer from 0 to 1000.
 *
 * @example Daily at 02:30 in New York across the spring-forward gap
 * ```ts
 * const runs = nextRuns(
 *   { frequency: "cron", cron_expression: "30 2 * * *", timezone: "America/New_York" },
 *   Temporal.Instant.from("2026-03-08T06:30:00Z"),
 *   2,
 * );
 * // 2026-03-08T07:00:00Z, 2026-03-09T06:30:00Z
 * ```
 */
export function nextRuns(
  spec: NextRunsSpec,
  after: Temporal.Instant | Date,
  count: number,
): Temporal.Instant[] {
  if (!Number.isInteger(count) || count < 0 || count > 1000) {
    throw new RangeError(`count must be an integer from 0 to 1000, got ${count}`);
  }
  const m = matcherOf(spec);
  const from = after instanceof Date
    ? Temporal.Instant.fromEpochMilliseconds(after.getTime())
    : after;
  const out: Temporal.Instant[] = [];
  if (count === 0) return out;
  const afterNs = m.notBefore !== undefined && m.notBefore > from.epochNanoseconds
    ? m.notBefore - 1n
    : from.epochNanoseconds;
  if (m.once) {
    const at = m.notBefore!;
    return at > from.epochNanoseconds ? [Temporal.Instant.fromEpochNanoseconds(at)] : [];
  }
  const zone = spec.timezone;
  const start = Temporal.Instant.fromEpochNanoseconds(afterNs).toZonedDateTimeISO(zone);
  // Near an offset change, earlier wall times can still map to later instants (overlap).
  const near = [-MARGIN_SECONDS, MARGIN_SECONDS].some((s) =>
    start.add({ seconds: s }).offsetNanoseconds !== start.offsetNanoseconds
  );
  let wall: Temporal.PlainDateTime | undefined = start.toPlainDateTime()
    .subtract({ seconds: near ? MARGIN_SECONDS : 0 })
    .round({ smallestUnit: "second", roundingMode: "floor" });
  const endYear = wall.year + HORIZON_YEARS;
  // Second copies of fall-back times: they come after every first copy of the overlap.
  let pending: Temporal.Instant[] = [];
  const emit = (instant: Temporal.Instant) => {
    if (instant.epochNanoseconds <= afterNs) return;
    const last = out.at(-1);
    if (last && last.epochNanoseconds >= instant.epochNanoseconds) return;
    out.push(instant);
  };
  while (out.length < count) {
    wall = nextWallMatch(m, wall, endYear);
    if (!wall) break;
    const at = instantsOf(wall, zone);
    if (!at.second) {
      for (const p of pending) emit(p);
      pending = [];
    }
    if (!at.gap || !m.followsRealTime) emit(at.first);
    if (at.second && m.followsRealTime) pending.push(at.second);
    wall = wall.add({ seconds: 1 });
  }
  for (const p of pending) if (out.length < count) emit(p);
  return out.slice(0, count);
}

/**
 * Validates a spec: parses it and checks that it fires at least once after `now`.
 * @throws {InvalidScheduleError} when it does not parse or can never fire (for example
 *   `0 0 30 2 *`), naming the field.
 */
export function validateSpec(spec: NextRunsSpec, now: Temporal.Instant): void {
  const runs = nextRuns(spec, now, 1);
  if (runs.length === 0 && spec.frequency === "cron") {
    throw new InvalidScheduleError(
      "cron_expression",
      `cron_expression ${JSON.stringify(spec.cron_expression)} never fires`,
    );
  }
}
