/**
 * The overlap policy's decision for one tick: pure.
 * @module
 */
import type { OverlapPolicy } from "./schedule_input.ts";

/**
 * What a tick does: `fire` (submit its job), `skip` (record it as skipped, with the reason
 * of `schedule.skipped`), or `queue` (hold it until the previous run ends).
 */
export type OverlapDecision =
  | { action: "fire" }
  | { action: "skip"; reason: "overlap" | "queue_full" }
  | { action: "queue" };

/**
 * Decides a tick under `policy`.
 *
 * @param policy the schedule's overlap policy.
 * @param previousActive whether the job of the schedule's last fire is still active.
 * @param holding whether a tick is already held by `queue_one`.
 * @returns `allow` always fires; with the previous run active `skip` skips and `queue_one`
 * holds the tick, or skips it (`queue_full`) when one is already held (as Temporal's
 * `BUFFER_ONE` overlap policy); with the previous run ended every policy fires.
 */
export function overlapDecision(
  policy: OverlapPolicy,
  previousActive: boolean,
  holding: boolean,
): OverlapDecision {
  if (policy === "allow" || !previousActive) return { action: "fire" };
  if (policy === "skip") return { action: "skip", reason: "overlap" };
  return holding ? { action: "skip", reason: "queue_full" } : { action: "queue" };
}
