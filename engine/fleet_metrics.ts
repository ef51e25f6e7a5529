/**
 * Counters and histograms for Prometheus, folded from the log (so they are rebuilt at every
 * start, like the other read models): events by category, dispatch latency (from the moment
 * a job could be dispatched to `job.dispatched`) and job duration (`job.started` to the end
 * of the attempt). Gauges (jobs by status, queue depth, robots) are read from the read models
 * when scraped, by the HTTP route.
 *
 * @module
 */
import type { AppendObservation, RecordedEvent } from "../events/mod.ts";

/** Upper bounds of the latency buckets, in seconds. */
export const DISPATCH_LATENCY_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
];

/** Upper bounds of the job duration buckets, in seconds. */
export const JOB_DURATION_BUCKETS: readonly number[] = [
  0.1,
  0.5,
  1,
  5,
  10,
  30,
  60,
  300,
  900,
  3600,
  14_400,
];

/**
 * Upper bounds of the event-append latency buckets, in seconds (0.5 ms to 5 s: a local
 * PGlite commit takes about a millisecond, a PostgreSQL one a few; an append waiting for
 * a busy database or a lock lands in the upper buckets).
 */
export const APPEND_LATENCY_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];

/** A cumulative histogram (Prometheus semantics: `le` buckets, sum and count). */
export class Histogram {
  readonly bounds: readonly number[];
  /** Observations ≤ each bound (not cumulative; cumulated when rendered). */
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = bounds.map(() => 0);
  }

  /** Records one value (seconds); negative values (clock steps) count as 0. */
  observe(value: number): void {
    const v = Math.max(0, value);
    const i = this.bounds.findIndex((b) => v <= b);
    if (i >= 0) this.counts[i]++;
    this.sum += v;
    this.count++;
  }

  /** `[le, cumulative count]` pairs, ending with `+Inf`. */
  cumulative(): [string, number][] {
    let total = 0;
    const out: [string, number][] = this.bounds.map((b, i) => {
      total += this.counts[i];
      return [String(b), total];
    });
    out.push(["+Inf", this.count]);
    return out;
  }
}

/** The log-derived metrics; feed it every applied batch with {@linkcode FleetMetrics.apply}. */
export class FleetMetrics {
  /** Events applied, by category (`job`, `robot`, `workflow`, …). */
  readonly eventsByCategory = new Map<string, number>();
  readonly dispatchLatency = new Histogram(DISPATCH_LATENCY_BUCKETS);
  readonly jobDuration = new Histogram(JOB_DURATION_BUCKETS);
  /**
   * Seconds each append of this node took (`SqlEventStore.observeAppends`), whatever its
   * outcome. Unlike the rest, measured by this process, not folded from the log.
   */
  readonly appendLatency = new Histogram(APPEND_LATENCY_BUCKETS);
  /** Appends of this node by outcome (`written`, `replayed`, `failed`). */
  readonly appends = new Map<string, number>();
  /** Jobs finished, by final status (including retried attempts as `retry_scheduled`). */
  readonly attemptsEnded = new Map<string, number>();
  /** When each waiting job became dispatchable (ms since epoch). */
  #waitingSince = new Map<string, number>();
  /** When each running job started (ms since epoch). */
  #startedAt = new Map<string, number>();

  /** Records one append of this node (wire it to `SqlEventStore.observeAppends`). */
  observeAppend(observation: AppendObservation): void {
    this.appendLatency.observe(observation.durationMs / 1000);
    this.appends.set(observation.outcome, (this.appends.get(observation.outcome) ?? 0) + 1);
  }

  /** Folds a batch of recorded events, in log order. */
  apply(events: readonly RecordedEvent[]): void {
    for (const e of events) {
      const category = e.type.slice(0, Math.max(0, e.type.indexOf("."))) || e.type;
      this.eventsByCategory.set(category, (this.eventsByCategory.get(category) ?? 0) + 1);
      if (!e.streamId.startsWith("job-")) continue;
      const jobId = e.streamId.slice(4);
      const d = e.data as Record<string, unknown>;
      switch (e.type) {
        case "job.queued":
          this.#waitingSince.set(jobId, ms(d.queued_at) ?? e.recordedAt.getTime());
          break;
        case "job.rejected":
          this.#waitingSince.set(jobId, e.recordedAt.getTime());
          break;
        case "job.retry_scheduled":
          this.#startedAt.delete(jobId);
          this.#waitingSince.set(jobId, ms(d.retry_at) ?? e.recordedAt.getTime());
          this.#ended("retry_scheduled");
          break;
        case "job.dispatched": {
          const since = this.#waitingSince.get(jobId);
          const at = ms(d.dispatched_at);
          if (since !== undefined && at !== undefined) {
            this.dispatchLatency.observe((at - since) / 1000);
          }
          this.#waitingSince.delete(jobId);
          break;
        }
        case "job.started": {
          const at = ms(d.started_at);
          if (at !== undefined) this.#startedAt.set(jobId, at);
          break;
        }
        case "job.completed":
        case "job.failed":
        case "job.cancelled":
        case "job.timed_out": {
          const started = this.#startedAt.get(jobId);
          const end = ms(d.completed_at ?? d.cancelled_at ?? d.timed_out_at);
          if (started !== undefined && end !== undefined) {
            this.jobDuration.observe((end - started) / 1000);
          }
          this.#startedAt.delete(jobId);
          this.#waitingSince.delete(jobId);
          this.#ended(e.type.slice(4));
          break;
        }
      }
    }
  }

  /**
   * What {@linkcode FleetMetrics.apply} folded from the log, for a start-up checkpoint
   * (`engine/startup_checkpoint.ts`; live references, serialised at once). The append
   * observations are this process's own and are not included.
   */
  checkpointState(): unknown {
    const histogram = (h: Histogram) => ({ counts: h.counts, sum: h.sum, count: h.count });
    return {
      eventsByCategory: this.eventsByCategory,
      dispatchLatency: histogram(this.dispatchLatency),
      jobDuration: histogram(this.jobDuration),
      attemptsEnded: this.attemptsEnded,
      waitingSince: this.#waitingSince,
      startedAt: this.#startedAt,
    };
  }

  /** Replaces the folded state with one from {@linkcode FleetMetrics.checkpointState}. */
  restoreState(state: unknown): void {
    type H = { counts: number[]; sum: number; count: number };
    const s = state as {
      eventsByCategory: Map<string, number>;
      dispatchLatency: H;
      jobDuration: H;
      attemptsEnded: Map<string, number>;
      waitingSince: Map<string, number>;
      startedAt: Map<string, number>;
    };
    const copy = <K, V>(to: Map<K, V>, from: Map<K, V>) => {
      to.clear();
      for (const [k, v] of from) to.set(k, v);
    };
    const restore = (to: Histogram, from: H) => {
      to.counts.splice(0, to.counts.length, ...from.counts);
      to.sum = from.sum;
      to.count = from.count;
    };
    copy(this.eventsByCategory, s.eventsByCategory);
    restore(this.dispatchLatency, s.dispatchLatency);
    restore(this.jobDuration, s.jobDuration);
    copy(this.attemptsEnded, s.attemptsEnded);
    this.#waitingSince = s.waitingSince;
    this.#startedAt = s.startedAt;
  }

  #ended(status: string): void {
    this.attemptsEnded.set(status, (this.attemptsEnded.get(status) ?? 0) + 1);
  }
}

function ms(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}
