/**
 * A schedule's state, folded from its stream `schedule-<id>`: pure.
 *
 * Events (data as recorded):
 * - `schedule.added` `{schedule_id, definition, added_at}`
 * - `schedule.updated` `{changes, updated_at}` (only fields that changed)
 * - `schedule.paused` `{paused_at}`, `schedule.resumed` `{resumed_at}`
 * - `schedule.removed` `{removed_at}`
 * - `schedule.fired` `{scheduled_for, job_id, catch_up, queued?}`; its event id is derived from
 *   (`schedule_id`, `scheduled_for`), so recording a tick twice is a no-op. `queued: true`
 *   when it is the tick a `queue_one` schedule held until its previous run ended.
 * - `schedule.skipped` `{scheduled_for, reason, active_job_id}`: the tick made no job because
 *   the previous run `active_job_id` was still active (`reason` `"overlap"` under `skip`,
 *   `"queue_full"` under `queue_one` when a tick is already held).
 * - `schedule.queued` `{scheduled_for, active_job_id}`: `queue_one` holds the tick until
 *   `active_job_id` ends.
 *
 * The event ids of `schedule.skipped` and `schedule.queued` are derived from
 * (`schedule_id`, `scheduled_for`) too, so every decision about a tick is recorded once.
 *
 * @module
 */
import type { RecordedEvent } from "../events/mod.ts";
import type { ScheduleDefinition } from "./schedule_input.ts";

/** Prefix of schedule streams. */
export const SCHEDULE_STREAM_PREFIX = "schedule-";

/** A schedule as folded from its events. Times are RFC 3339 UTC strings. */
export interface ScheduleState extends ScheduleDefinition {
  schedule_id: string;
  /** Scheduled time of the last recorded fire. */
  last_run: string | null;
  created_at: string;
  updated_at: string;
  removed: boolean;
  /**
   * Ticks at or before this instant are settled (fired, or before the schedule existed or
   * was last redefined, but for a `once` schedule's own tick: see `definedCursor`); later
   * ones are due. Ticks missed while down or paused lie between
   * it and now.
   */
  cursor: string;
  /** Version of the stream after the last applied event. */
  version: number;
  /** Job of the last recorded fire: the "previous run" of the overlap policy. */
  last_job_id: string | null;
  /** Tick held by `queue_one` until the previous run ends (RFC 3339 UTC), else null. */
  pending_run: string | null;
}

const later = (a: string, b: string): string =>
  Temporal.Instant.compare(Temporal.Instant.from(a), Temporal.Instant.from(b)) >= 0 ? a : b;

/**
 * The cursor a schedule (re)defined at `at` starts from: `at` (ticks before its definition are
 * not owed), except for a `once` schedule whose `start_at` is at or before `at` (the default
 * start_at is the creation time): its single tick is owed, so the cursor starts just before
 * it. The scheduler then fires it at once when it is at most the misfire grace late, else
 * treats it as a missed tick (misfire policy).
 */
function definedCursor(def: Partial<ScheduleDefinition>, at: string): string {
  if (def.frequency !== "once" || !def.start_at) return at;
  const start = Temporal.Instant.from(def.start_at);
  if (Temporal.Instant.compare(start, Temporal.Instant.from(at)) > 0) return at;
  return start.subtract({ nanoseconds: 1 }).toString();
}

/**
 * Applies one event of a `schedule-<id>` stream.
 * @returns the next state; `undefined` before `schedule.added`.
 */
export function applyScheduleEvent(
  state: ScheduleState | undefined,
  event: Pick<RecordedEvent, "type" | "data" | "streamVersion">,
): ScheduleState | undefined {
  const d = event.data as Record<string, unknown>;
  if (event.type === "schedule.added") {
    const at = d.added_at as string;
    return {
      ...(d.definition as ScheduleDefinition),
      schedule_id: d.schedule_id as string,
      last_run: null,
      created_at: at,
      updated_at: at,
      removed: false,
      cursor: definedCursor(d.definition as ScheduleDefinition, at),
      version: event.streamVersion,
      last_job_id: null,
      pending_run: null,
    };
  }
  if (!state) return undefined;
  const next = { ...state, version: event.streamVersion };
  switch (event.type) {
    case "schedule.updated": {
      const at = d.updated_at as string;
      // Ticks of the new definition before the change are not owed (but a `once` schedule
      // moved to a start_at not after the change owes its tick, unless it already ran).
      const changed = { ...next, ...(d.changes as object) } as ScheduleState;
      const moved = "start_at" in (d.changes as object) || "frequency" in (d.changes as object);
      const owed = definedCursor(changed, at);
      const cursor = moved && owed !== at && changed.last_run !== changed.start_at
        ? owed
        : later(state.cursor, at);
      return { ...changed, updated_at: at, cursor };
    }
    case "schedule.paused":
      return { ...next, enabled: false, updated_at: d.paused_at as string };
    case "schedule.resumed":
      return { ...next, enabled: true, updated_at: d.resumed_at as string };
    case "schedule.removed":
      return { ...next, removed: true, enabled: false, updated_at: d.removed_at as string };
    case "schedule.fired": {
      const at = d.scheduled_for as string;
      return {
        ...next,
        last_run: state.last_run ? later(state.last_run, at) : at,
        cursor: later(state.cursor, at),
        last_job_id: d.job_id as string,
        pending_run: state.pending_run === at ? null : state.pending_run,
      };
    }
    case "schedule.skipped": {
      const at = d.scheduled_for as string;
      // A held tick that could not run (workflow gone) is no longer held.
      const pending_run = state.pending_run === at ? null : state.pending_run;
      return { ...next, cursor: later(state.cursor, at), pending_run };
    }
    case "schedule.queued": {
      const at = d.scheduled_for as string;
      return { ...next, cursor: later(state.cursor, at), pending_run: state.pending_run ?? at };
    }
    default:
      return next;
  }
}

/**
 * A name-based UUID from the SHA-256 of `text`: the first 16 bytes, with the version set
 * to 8 and the RFC 9562 variant bits, so strict UUID parsers accept it (RFC 9562 §5.8).
 */
export async function uuidFromSha256(text: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  digest[6] = (digest[6] & 0x0f) | 0x80;
  digest[8] = (digest[8] & 0x3f) | 0x80;
  const hex = Array.from(digest.slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20, 32)
  }`;
}
