/**
 * The reference's `DashboardMetrics`, kept from the log.
 *
 * "Today" is the UTC calendar day (00:00:00.000Z to 23:59:59.999Z) holding the clock's
 * instant at read time, whatever the server's or the viewer's time zone.
 * - `total_jobs_today`: jobs submitted today (`job.submitted`'s `created_at`).
 * - `completed_jobs_today`, `failed_jobs_today`: jobs whose final outcome was recorded today
 *   (`job.completed`; `job.failed` or `job.timed_out`), whenever they were submitted. A
 *   failed attempt that is retried (`job.retry_scheduled`) is not an outcome; a cancelled job
 *   counts in neither.
 * - `success_rate`: completed / (completed + failed + timed out) among those ended today, in
 *   percent (0–100); 0 when none ended today.
 * - `average_execution_time`: the mean of the robot-reported `result.execution_time`
 *   (seconds) of the jobs completed today that reported one (a finite number >= 0); 0 when
 *   none did. Failed and timed-out jobs are not in it.
 * - `pending_jobs`: jobs queued or waiting for a retry now; `running_jobs`: dispatched or
 *   running now.
 * - Robot counts come from each robot's last recorded connection (`robot.connected` /
 *   `robot.disconnected`); a paused robot that is connected is online.
 *
 * Event times are the ones recorded in the events' data (the engine's clock), falling back
 * to `recorded_at`.
 *
 * @module
 */
import type { RecordedEvent } from "../events/mod.ts";

/** The reference's DashboardMetrics. */
export interface DashboardMetrics {
  total_robots: number;
  online_robots: number;
  offline_robots: number;
  total_jobs_today: number;
  completed_jobs_today: number;
  failed_jobs_today: number;
  pending_jobs: number;
  running_jobs: number;
  /**
   * Mean robot-reported `execution_time` of the jobs completed today that reported one, in
   * seconds (0 when none).
   */
  average_execution_time: number;
  /** Completed / (completed + failed + timed out) of the jobs ended today, 0–100 (percent); 0 when none ended. */
  success_rate: number;
}

interface DayCounters {
  /** Jobs submitted that day. */
  total: number;
  /** Jobs that ended that day, by outcome. */
  completed: number;
  failed: number;
  /** Sum and number of the reported execution times of that day's completed jobs. */
  executionTimeSum: number;
  executionTimes: number;
}

const EMPTY_DAY: Readonly<DayCounters> = {
  total: 0,
  completed: 0,
  failed: 0,
  executionTimeSum: 0,
  executionTimes: 0,
};

/** The UTC day (`YYYY-MM-DD`) of an event: its data's time field, else `recorded_at`. */
function dayOf(event: RecordedEvent, field: string): string {
  const value = event.data[field];
  const t = typeof value === "string" ? Date.parse(value) : NaN;
  return new Date(Number.isNaN(t) ? event.recordedAt.getTime() : t).toISOString().slice(0, 10);
}

const ACTIVE = new Set(["job.dispatched", "job.started"]);
const INACTIVE = new Set([
  "job.queued",
  "job.rejected",
  "job.completed",
  "job.failed",
  "job.cancelled",
  "job.timed_out",
]);

/** Dashboard projection. */
export class DashboardProjection {
  #days = new Map<string, DayCounters>();
  #jobStatus = new Map<string, "pending" | "running" | "done">();
  #pending = 0;
  #running = 0;
  #robotOnline = new Map<string, boolean>();

  /** Applies one event in global order. */
  apply(event: RecordedEvent): void {
    if (event.streamId.startsWith("robot-")) return this.#applyRobot(event);
    if (!event.streamId.startsWith("job-")) return;
    const jobId = event.streamId.slice(4);
    if (event.type === "job.submitted") {
      this.#counters(dayOf(event, "created_at")).total++;
      this.#setStatus(jobId, "pending");
      return;
    }
    if (ACTIVE.has(event.type)) this.#setStatus(jobId, "running");
    else if (
      event.type === "job.queued" || event.type === "job.rejected" ||
      event.type === "job.retry_scheduled"
    ) {
      this.#setStatus(jobId, "pending");
    } else if (INACTIVE.has(event.type)) {
      this.#setStatus(jobId, "done");
      if (event.type === "job.completed") {
        const day = this.#counters(dayOf(event, "completed_at"));
        day.completed++;
        const result = event.data.result as { execution_time?: unknown } | null;
        const seconds = result?.execution_time;
        if (typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0) {
          day.executionTimeSum += seconds;
          day.executionTimes++;
        }
      } else if (event.type === "job.failed") {
        this.#counters(dayOf(event, "completed_at")).failed++;
      } else if (event.type === "job.timed_out") {
        this.#counters(dayOf(event, "timed_out_at")).failed++;
      }
    }
  }

  #applyRobot(event: RecordedEvent): void {
    const robotId = event.streamId.slice(6);
    if (event.type === "robot.registered" && !this.#robotOnline.has(robotId)) {
      this.#robotOnline.set(robotId, false);
    } else if (event.type === "robot.connected") this.#robotOnline.set(robotId, true);
    else if (event.type === "robot.disconnected") this.#robotOnline.set(robotId, false);
  }

  #counters(day: string): DayCounters {
    let c = this.#days.get(day);
    if (!c) {
      c = { ...EMPTY_DAY };
      this.#days.set(day, c);
    }
    return c;
  }

  #setStatus(jobId: string, status: "pending" | "running" | "done"): void {
    const before = this.#jobStatus.get(jobId);
    if (before === status) return;
    if (before === "pending") this.#pending--;
    if (before === "running") this.#running--;
    if (status === "pending") this.#pending++;
    if (status === "running") this.#running++;
    if (status === "done") this.#jobStatus.delete(jobId);
    else this.#jobStatus.set(jobId, status);
  }

  /** The metrics as of `now` (ms since epoch; decides which UTC day is "today"). */
  /**
   * The projection's state for a start-up checkpoint (`engine/startup_checkpoint.ts`):
   * live references, to be serialised at once (structured clone).
   */
  checkpointState(): unknown {
    return {
      days: this.#days,
      jobStatus: this.#jobStatus,
      pending: this.#pending,
      running: this.#running,
      robotOnline: this.#robotOnline,
    };
  }

  /** Replaces the state with one from {@linkcode DashboardProjection.checkpointState}. */
  restoreState(state: unknown): void {
    const s = state as {
      days: Map<string, DayCounters>;
      jobStatus: Map<string, "pending" | "running" | "done">;
      pending: number;
      running: number;
      robotOnline: Map<string, boolean>;
    };
    this.#days = s.days;
    this.#jobStatus = s.jobStatus;
    this.#pending = s.pending;
    this.#running = s.running;
    this.#robotOnline = s.robotOnline;
  }

  metrics(now: number): DashboardMetrics {
    const today = this.#days.get(new Date(now).toISOString().slice(0, 10)) ?? EMPTY_DAY;
    const online = [...this.#robotOnline.values()].filter(Boolean).length;
    const ended = today.completed + today.failed;
    return {
      total_robots: this.#robotOnline.size,
      online_robots: online,
      offline_robots: this.#robotOnline.size - online,
      total_jobs_today: today.total,
      completed_jobs_today: today.completed,
      failed_jobs_today: today.failed,
      pending_jobs: this.#pending,
      running_jobs: this.#running,
      average_execution_time: today.executionTimes
        ? today.executionTimeSum / today.executionTimes
        : 0,
      success_rate: ended ? (100 * today.completed) / ended : 0,
    };
  }
}
