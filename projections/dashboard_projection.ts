/**
 * The reference's `DashboardMetrics`, kept from the log.
 *
 * Job counters are kept per UTC day of the job's creation; "today" is the clock's UTC
 * date at read time. Robot counts come from the robots' last recorded status.
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
  /** Mean `execution_time` of today's completed jobs, in seconds (0 when none). */
  average_execution_time: number;
  /** Completed / (completed + failed + timeout) today, 0–100 (percent); 0 when none ended. */
  success_rate: number;
}

interface DayCounters {
  total: number;
  completed: number;
  failed: number;
  executionTimeSum: number;
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
  #jobDay = new Map<string, string>();
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
      const day = String(event.data.created_at ?? event.recordedAt.toISOString()).slice(0, 10);
      this.#jobDay.set(jobId, day);
      this.#counters(day).total++;
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
      const day = this.#counters(this.#jobDay.get(jobId) ?? "");
      if (event.type === "job.completed") {
        day.completed++;
        const result = event.data.result as { execution_time?: number } | null;
        day.executionTimeSum += Number(result?.execution_time ?? 0);
      } else if (event.type === "job.failed" || event.type === "job.timed_out") day.failed++;
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
      c = { total: 0, completed: 0, failed: 0, executionTimeSum: 0 };
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
  metrics(now: number): DashboardMetrics {
    const today = this.#days.get(new Date(now).toISOString().slice(0, 10)) ??
      { total: 0, completed: 0, failed: 0, executionTimeSum: 0 };
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
      average_execution_time: today.completed ? today.executionTimeSum / today.completed : 0,
      success_rate: ended ? (100 * today.completed) / ended : 0,
    };
  }
}
