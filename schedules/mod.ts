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
  validateZoneName,
} from "./next_runs.ts";
export {
  MISFIRE_POLICIES,
  type MisfirePolicy,
  OVERLAP_POLICIES,
  type OverlapPolicy,
  parseScheduleDefinition,
  type ScheduleDefinition,
} from "./schedule_input.ts";
export {
  applyScheduleEvent,
  SCHEDULE_STREAM_PREFIX,
  type ScheduleState,
  uuidFromSha256,
} from "./schedule_state.ts";
export { Scheduler, specOf } from "./scheduler.ts";
export {
  type ScheduledJobInput,
  ScheduleExistsError,
  ScheduleNotFoundError,
  type SchedulerOptions,
  type ScheduleView,
} from "./scheduler_types.ts";
