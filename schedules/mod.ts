/**
 * Schedules: the pure next-run computation, the event-sourced scheduler that fires each tick
 * exactly once, and their types. REST routes live in `http/schedule_routes.ts`.
 *
 * @module
 */
export {
  FREQUENCIES,
  type Frequency,
  InvalidScheduleError,
  nextRuns,
  type NextRunsSpec,
  validateSpec,
  validateTimeZone,
} from "./next_runs.ts";
