/**
 * Metrics over time, kept from the log: what the dashboard's Metrics panel charts.
 *
 * Events are counted in buckets of {@linkcode HISTORY_RESOLUTION_MS} by the time they were
 * recorded (`recorded_at`, the database clock). Counters (jobs submitted, completed, failed,
 * cancelled, execution time) add up within a bucket; gauges (queue depth, running jobs,
 * capacity of the connected robots) keep their value at the end of the bucket and carry
 * forward over buckets without events. Only buckets that saw an event are stored.
 *
 * The projection is pure: `apply` folds one event, `series` reads; no clock, no I/O.
 *
 * @module
 */
import type { RecordedEvent } from "../events/mod.ts";

/** Width of a stored bucket, in milliseconds (10 s). */
export const HISTORY_RESOLUTION_MS = 10_000;

/** Events kept for {@linkcode MetricsHistory.recent}. */
export const RECENT_EVENTS_KEPT = 100;

/** One point of a series: the bucket starting at `t`. */
export interface MetricsPoint {
  /** Start of the bucket, ms since the epoch (UTC). */
  t: number;
  /** Jobs submitted in the bucket. */
  submitted: number;
  /** Jobs completed in the bucket. */
  completed: number;
  /** Jobs failed or timed out in the bucket. */
  failed: number;
  /** Jobs cancelled in the bucket. */
  cancelled: number;
  /** Mean `execution_time` of the bucket's completed jobs, in seconds; null when none. */
  avg_execution_time: number | null;
  /** Jobs waiting in the queue at the end of the bucket. */
  queue_depth: number;
  /** Jobs dispatched or running at the end of the bucket. */
  running: number;
  /** Sum of `max_concurrent_jobs` of the connected robots at the end of the bucket. */
  capacity: number;
  /** `running / capacity` at the end of the bucket, 0–1 (0 without capacity). */
  utilisation: number;
}

interface Bucket {
  submitted: number;
  completed: number;
  failed: number;
  cancelled: number;
  execSum: number;
  execCount: number;
  queue: number;
  running: number;
  capacity: number;
}

type JobPhase = "queued" | "running" | "done";

const QUEUED = new Set(["job.queued", "job.rejected", "job.retry_scheduled"]);
const RUNNING = new Set(["job.dispatched", "job.started"]);
const ENDED = new Set(["job.completed", "job.failed", "job.cancelled", "job.timed_out"]);

/** The metrics-over-time projection. */
export class MetricsHistory {
  #buckets = new Map<number, Bucket>();
  #jobs = new Map<string, JobPhase>();
  #robotSlots = new Map<string, number>();
  #robotOnline = new Set<string>();
  #queue = 0;
  #running = 0;
  #recent: RecordedEvent[] = [];

  /** Folds one event, in log order. */
  apply(event: RecordedEvent): void {
    this.#recent.push(event);
    if (this.#recent.length > RECENT_EVENTS_KEPT * 2) {
      this.#recent = this.#recent.slice(-RECENT_EVENTS_KEPT);
    }
    const stream = event.streamId;
    if (stream.startsWith("job-")) this.#applyJob(stream.slice(4), event);
    else if (stream.startsWith("robot-")) this.#applyRobot(stream.slice(6), event);
    else return;
    const b = this.#bucket(event.recordedAt.getTime());
    b.queue = this.#queue;
    b.running = this.#running;
    b.capacity = this.#capacity();
  }

  #applyJob(jobId: string, event: RecordedEvent): void {
    const type = event.type;
    const at = event.recordedAt.getTime();
    if (type === "job.submitted") {
      this.#bucket(at).submitted++;
      return;
    }
    if (QUEUED.has(type)) this.#setPhase(jobId, "queued");
    else if (RUNNING.has(type)) this.#setPhase(jobId, "running");
    else if (ENDED.has(type)) {
      this.#setPhase(jobId, "done");
      const b = this.#bucket(at);
      if (type === "job.completed") {
        b.completed++;
        const result = event.data.result as { execution_time?: unknown } | null | undefined;
        const seconds = Number(result?.execution_time);
        if (Number.isFinite(seconds)) {
          b.execSum += seconds;
          b.execCount++;
        }
      } else if (type === "job.cancelled") b.cancelled++;
      else b.failed++;
    }
  }

  #applyRobot(robotId: string, event: RecordedEvent): void {
    if (event.type === "robot.registered") {
      const slots = Number(event.data.max_concurrent_jobs);
      this.#robotSlots.set(robotId, Number.isFinite(slots) && slots > 0 ? slots : 1);
    } else if (event.type === "robot.connected") this.#robotOnline.add(robotId);
    else if (event.type === "robot.disconnected") this.#robotOnline.delete(robotId);
  }

  #capacity(): number {
    let sum = 0;
    for (const id of this.#robotOnline) sum += this.#robotSlots.get(id) ?? 1;
    return sum;
  }

  #setPhase(jobId: string, phase: JobPhase): void {
    const before = this.#jobs.get(jobId);
    if (before === phase) return;
    if (before === "queued") this.#queue--;
    if (before === "running") this.#running--;
    if (phase === "queued") this.#queue++;
    if (phase === "running") this.#running++;
    if (phase === "done") this.#jobs.delete(jobId);
    else this.#jobs.set(jobId, phase);
  }

  #bucket(atMs: number): Bucket {
    const key = Math.floor(atMs / HISTORY_RESOLUTION_MS) * HISTORY_RESOLUTION_MS;
    let b = this.#buckets.get(key);
    if (!b) {
      b = {
        submitted: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        execSum: 0,
        execCount: 0,
        queue: this.#queue,
        running: this.#running,
        capacity: this.#capacity(),
      };
      this.#buckets.set(key, b);
    }
    return b;
  }

  /** The latest events folded, oldest first, at most `limit` (≤ {@linkcode RECENT_EVENTS_KEPT}). */
  recent(limit: number): RecordedEvent[] {
    return this.#recent.slice(-Math.min(limit, RECENT_EVENTS_KEPT));
  }

  /**
   * The series from `from` (inclusive) to `to` (exclusive), one point per `stepMs`.
   *
   * @param from start, ms since the epoch; rounded down to the resolution.
   * @param to end, ms since the epoch.
   * @param stepMs width of a point, a positive multiple of {@linkcode HISTORY_RESOLUTION_MS}.
   * @throws {RangeError} when `stepMs` is not such a multiple or `to` is not after `from`.
   */
  series(from: number, to: number, stepMs: number): MetricsPoint[] {
    if (!(stepMs > 0) || stepMs % HISTORY_RESOLUTION_MS !== 0) {
      throw new RangeError(
        `step must be a positive multiple of ${HISTORY_RESOLUTION_MS} ms, got ${stepMs}`,
      );
    }
    if (!(to > from)) throw new RangeError(`to (${to}) must be after from (${from})`);
    const start = Math.floor(from / HISTORY_RESOLUTION_MS) * HISTORY_RESOLUTION_MS;
    const keys = [...this.#buckets.keys()].sort((a, b) => a - b);
    // Gauges as they stood before the range: the last bucket before it.
    let i = 0;
    let gauge = { queue: 0, running: 0, capacity: 0 };
    while (i < keys.length && keys[i] < start) {
      const b = this.#buckets.get(keys[i])!;
      gauge = { queue: b.queue, running: b.running, capacity: b.capacity };
      i++;
    }
    const points: MetricsPoint[] = [];
    for (let t = start; t < to; t += stepMs) {
      const p = { submitted: 0, completed: 0, failed: 0, cancelled: 0, execSum: 0, execCount: 0 };
      while (i < keys.length && keys[i] < t + stepMs) {
        const b = this.#buckets.get(keys[i])!;
        p.submitted += b.submitted;
        p.completed += b.completed;
        p.failed += b.failed;
        p.cancelled += b.cancelled;
        p.execSum += b.execSum;
        p.execCount += b.execCount;
        gauge = { queue: b.queue, running: b.running, capacity: b.capacity };
        i++;
      }
      points.push({
        t,
        submitted: p.submitted,
        completed: p.completed,
        failed: p.failed,
        cancelled: p.cancelled,
        avg_execution_time: p.execCount ? p.execSum / p.execCount : null,
        queue_depth: gauge.queue,
        running: gauge.running,
        capacity: gauge.capacity,
        utilisation: gauge.capacity ? Math.min(1, gauge.running / gauge.capacity) : 0,
      });
    }
    return points;
  }
}
