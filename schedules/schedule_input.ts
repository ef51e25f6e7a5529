/**
 * Validation of a schedule's definition as clients send it (`POST` and `PATCH`): pure, throws
 * {@linkcode InvalidScheduleError} naming the offending field.
 *
 * @module
 */
import {
  FREQUENCIES,
  type Frequency,
  InvalidScheduleError,
  validateSpec,
  validateZoneName,
} from "./next_runs.ts";

/** What happens to ticks missed while the orchestrator was down or the schedule paused. */
export type MisfirePolicy = "skip" | "run_once" | "run_all";
/** The misfire policies, for validation. */
export const MISFIRE_POLICIES: readonly MisfirePolicy[] = ["skip", "run_once", "run_all"];

/**
 * What a tick does while the schedule's previous run (the job of its last fire) is still
 * active: `allow` fires anyway, `skip` records the tick as skipped, `queue_one` holds it and
 * fires it when the previous run ends, holding at most one such tick (later ones are
 * skipped, like Temporal's `BUFFER_ONE` overlap policy).
 */
export type OverlapPolicy = "allow" | "skip" | "queue_one";
/** The overlap policies, for validation. */
export const OVERLAP_POLICIES: readonly OverlapPolicy[] = ["allow", "skip", "queue_one"];

/** A schedule's definition: everything a client sets. */
export interface ScheduleDefinition {
  /** Display name. @default null */
  name: string | null;
  /** Inline CasareRPA workflow JSON; either this or `workflow_id`. */
  workflow: Record<string, unknown> | null;
  /** Id of a stored workflow; either this or `workflow`. */
  workflow_id: string | null;
  frequency: Frequency;
  /** For `frequency: "cron"`: 5 fields, or 6 with seconds first. */
  cron_expression: string | null;
  /** IANA zone the schedule's wall-clock times are in. @default "UTC" */
  timezone: string;
  /**
   * RFC 3339 instant anchoring the interval frequencies (see `NextRunsSpec.anchor`).
   * @default the time the schedule was added
   */
  start_at: string | null;
  enabled: boolean;
  /** Variables of every job the schedule submits. @default {} */
  variables: Record<string, unknown>;
  /** Robot affinity of its jobs. @default null */
  robot_id: string | null;
  /** 0 low … 3 critical. @default 1 */
  priority: number;
  /** @default "run_once" */
  misfire_policy: MisfirePolicy;
  /** Seconds before "now" within which `run_all` catches up. @default 3600 */
  catch_up_window: number;
  /** See {@linkcode OverlapPolicy}. @default "allow" */
  overlap_policy: OverlapPolicy;
}

const PRIORITY_NAMES: Record<string, number> = { low: 0, normal: 1, high: 2, critical: 3 };

const DEFAULTS: Omit<ScheduleDefinition, "frequency"> = {
  name: null,
  workflow: null,
  workflow_id: null,
  cron_expression: null,
  timezone: "UTC",
  start_at: null,
  enabled: true,
  variables: {},
  robot_id: null,
  priority: 1,
  misfire_policy: "run_once",
  catch_up_window: 3600,
  overlap_policy: "allow",
};

const FIELDS = new Set([...Object.keys(DEFAULTS), "frequency"]);

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function bad(field: string, message: string): never {
  throw new InvalidScheduleError(field, message);
}

function optionalString(body: Record<string, unknown>, field: string): void {
  const v = body[field];
  if (v !== undefined && v !== null && (typeof v !== "string" || v === "")) {
    bad(field, `${field} must be a non-empty string or null, got ${JSON.stringify(v)}`);
  }
}

/** Earliest `start_at` accepted (the Unix epoch). */
const START_AT_MIN = Temporal.Instant.from("1970-01-01T00:00:00Z");
/** Latest `start_at` accepted: the end of year 9999 (RFC 3339 has four-digit years). */
const START_AT_MAX = Temporal.Instant.from("9999-12-31T23:59:59Z");

/**
 * Validates a definition (`base` absent: a new schedule; present: a `PATCH` of it) and
 * returns the complete, normalised definition.
 *
 * @param body the client's JSON.
 * @param options `now` (for the never-fires check and the default anchor), `base` for a patch.
 * @throws {InvalidScheduleError} naming the first offending field.
 */
export function parseScheduleDefinition(
  body: unknown,
  options: { now: Temporal.Instant; base?: ScheduleDefinition },
): ScheduleDefinition {
  if (!isObject(body)) bad("body", "the request body must be a JSON object");
  for (const key of Object.keys(body)) {
    if (!FIELDS.has(key) && key !== "schedule_id") bad(key, `unknown field ${key}`);
  }
  const def = { ...(options.base ?? DEFAULTS), ...body } as Record<string, unknown>;
  delete def.schedule_id;
  if (!options.base && body.frequency === undefined) {
    def.frequency = body.cron_expression ? "cron" : undefined;
  }
  if (!FREQUENCIES.includes(def.frequency as Frequency)) {
    bad("frequency", `frequency must be one of ${FREQUENCIES.join(", ")}`);
  }
  if (def.workflow !== null && !isObject(def.workflow)) {
    bad("workflow", "workflow must be a workflow JSON object");
  }
  for (const f of ["name", "workflow_id", "robot_id", "cron_expression", "start_at"]) {
    optionalString(def, f);
  }
  if (def.workflow === null && def.workflow_id === null) {
    bad("workflow", "either workflow (inline) or workflow_id is required");
  }
  if (typeof def.timezone !== "string") bad("timezone", "timezone must be an IANA zone name");
  // A new zone must be a zone name; one stored before offsets were refused is kept.
  if (body.timezone !== undefined) validateZoneName(body.timezone);
  if (typeof def.enabled !== "boolean") bad("enabled", "enabled must be a boolean");
  if (!isObject(def.variables)) bad("variables", "variables must be a JSON object");
  if (typeof def.priority === "string" && def.priority in PRIORITY_NAMES) {
    def.priority = PRIORITY_NAMES[def.priority];
  }
  if (
    !Number.isInteger(def.priority) || (def.priority as number) < 0 || (def.priority as number) > 3
  ) {
    bad(
      "priority",
      `priority must be 0-3 or low|normal|high|critical, got ${JSON.stringify(def.priority)}`,
    );
  }
  if (!MISFIRE_POLICIES.includes(def.misfire_policy as MisfirePolicy)) {
    bad("misfire_policy", `misfire_policy must be one of ${MISFIRE_POLICIES.join(", ")}`);
  }
  const window = def.catch_up_window;
  if (typeof window !== "number" || !Number.isFinite(window) || window < 0) {
    bad("catch_up_window", "catch_up_window must be a number of seconds >= 0");
  }
  if (!OVERLAP_POLICIES.includes(def.overlap_policy as OverlapPolicy)) {
    bad("overlap_policy", `overlap_policy must be one of ${OVERLAP_POLICIES.join(", ")}`);
  }
  if (def.frequency === "cron") {
    def.start_at = null;
  } else {
    def.cron_expression = null;
    def.start_at ??= options.now.toString();
    let anchor: Temporal.Instant | null = null;
    try {
      anchor = Temporal.Instant.from(def.start_at as string);
    } catch {
      bad("start_at", `start_at must be an RFC 3339 instant, got ${JSON.stringify(def.start_at)}`);
    }
    // Near Temporal's limits (year ±275760) the next-run search overflows or runs for ever.
    if (
      Temporal.Instant.compare(anchor!, START_AT_MIN) < 0 ||
      Temporal.Instant.compare(anchor!, START_AT_MAX) > 0
    ) {
      bad(
        "start_at",
        `start_at must be between ${START_AT_MIN} and ${START_AT_MAX}, got ${
          JSON.stringify(def.start_at)
        }`,
      );
    }
    def.start_at = anchor!.toString();
  }
  validateSpec({
    frequency: def.frequency as Frequency,
    cron_expression: def.cron_expression as string | null,
    timezone: def.timezone,
    anchor: def.start_at as string | null,
  }, options.now);
  if (def.start_at !== null) {
    def.start_at = Temporal.Instant.from(def.start_at as string).toString();
  }
  return def as unknown as ScheduleDefinition;
}
