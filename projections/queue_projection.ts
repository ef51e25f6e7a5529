/**
 * The job queue read model: queued jobs in dispatch order, critical > high > normal > low,
 * first in, first out within a priority (the reference's `JobQueue.dequeue()` order).
 *
 * Built only from the log. One insertion-ordered `Map` per priority keeps enqueue, removal
 * and "next job" O(1); iteration visits jobs in dispatch order.
 *
 * @module
 */
import type { RecordedEvent } from "../events/mod.ts";

/** A queued job as the queue knows it. */
export interface QueueEntry {
  job_id: string;
  /** 0 low … 3 critical. */
  priority: number;
  /** RFC 3339 UTC time the job (re)entered the queue. */
  queued_at: string;
  /** Global position of the `job.queued` event. */
  position: number;
  /** A retried job is not dispatched before this instant (RFC 3339), else null. */
  not_before: string | null;
}

const LEAVES_QUEUE = new Set([
  "job.dispatched",
  "job.cancelled",
  "job.timed_out",
  "job.failed",
  "job.completed",
]);

/** Priority queue projection. */
export class QueueProjection {
  #byPriority: Map<string, QueueEntry>[] = [new Map(), new Map(), new Map(), new Map()];
  #priorityOf = new Map<string, number>();

  /** Applies one event in global order. Ignores events it does not need. */
  apply(event: RecordedEvent): void {
    const jobId = event.streamId.startsWith("job-") ? event.streamId.slice(4) : null;
    if (jobId === null) return;
    if (event.type === "job.submitted") {
      this.#priorityOf.set(jobId, Number(event.data.priority ?? 1));
    } else if (
      event.type === "job.queued" || event.type === "job.rejected" ||
      event.type === "job.retry_scheduled"
    ) {
      const priority = this.#priorityOf.get(jobId) ?? 1;
      this.#remove(jobId);
      this.#byPriority[priority].set(jobId, {
        job_id: jobId,
        priority,
        queued_at: String(
          event.data.queued_at ?? event.data.failed_at ?? event.recordedAt.toISOString(),
        ),
        position: event.globalPosition,
        not_before: typeof event.data.retry_at === "string" ? event.data.retry_at : null,
      });
    } else if (LEAVES_QUEUE.has(event.type)) {
      this.#remove(jobId);
      if (event.type !== "job.dispatched") this.#priorityOf.delete(jobId);
    }
  }

  #remove(jobId: string): void {
    for (const bucket of this.#byPriority) bucket.delete(jobId);
  }

  /** Number of queued jobs. */
  get size(): number {
    return this.#byPriority.reduce((n, b) => n + b.size, 0);
  }

  /** Whether a job is queued. */
  has(jobId: string): boolean {
    return this.#byPriority.some((b) => b.has(jobId));
  }

  /** Queued jobs in dispatch order (highest priority first, FIFO within one). */
  *ordered(): IterableIterator<QueueEntry> {
    for (let p = 3; p >= 0; p--) yield* this.#byPriority[p].values();
  }

  /** The next job to dispatch, without removing it (the reference's `peek()`). */
  peek(): QueueEntry | undefined {
    return this.ordered().next().value;
  }

  /**
   * The projection's state for a start-up checkpoint (`engine/startup_checkpoint.ts`):
   * live references, to be serialised at once (structured clone).
   */
  checkpointState(): unknown {
    return { byPriority: this.#byPriority, priorityOf: this.#priorityOf };
  }

  /** Replaces the state with one from {@linkcode QueueProjection.checkpointState}. */
  restoreState(state: unknown): void {
    const s = state as { byPriority: Map<string, QueueEntry>[]; priorityOf: Map<string, number> };
    this.#byPriority = s.byPriority;
    this.#priorityOf = s.priorityOf;
  }
}
