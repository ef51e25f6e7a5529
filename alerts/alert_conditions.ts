/**
 * The alert conditions, folded from the log (pure: no clock, no I/O). Every node folds the
 * same events in the same order, so every node finds the same condition instances with the
 * same alert ids: an instance's id is its kind and the id of the event that started it
 * (`robot_disconnected-<event_id>`), which is what lets several orchestrators raise each
 * alert once (the `alert.raised` append expects version 0 of `alert-<alert_id>`).
 *
 * | kind                 | starts at                                                                 | raised                      | ends at                                   |
 * | -------------------- | ------------------------------------------------------------------------- | --------------------------- | ----------------------------------------- |
 * | `robot_disconnected` | `robot.disconnected`                                                      | `robotOfflineAfter` s later | the robot's `robot.connected`             |
 * | `job_timeout`        | `job.timed_out`, or `job.retry_scheduled` of a missed deadline            | at once                     | never (acknowledge it)                    |
 * | `high_error_rate`    | a job's end after which failed / ended in the window >= threshold         | at once                     | a job's end after which it is below, or the window sliding past the failures (the monitor's timer records `alert.resolved`) |
 * | `queue_backlog`      | a queue change that takes the depth above `queueDepth`                    | `queueDuration` s later     | a change that takes it back to or below   |
 *
 * Times are the ones recorded in the events' data (the engine's clock), else `recorded_at`.
 *
 * @module
 */
import type { RecordedEvent } from "../events/mod.ts";
import type { AlertConfig, AlertKind } from "./alert_config.ts";
import { ALERT_STREAM_PREFIX, type AlertSeverity } from "./alert_state.ts";

/** One occurrence of a condition: what `alert.raised` will say. */
export interface ConditionInstance {
  /** `<kind>-<event id of the trigger>`. */
  alert_id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  subject: Record<string, string>;
  message: string;
  /** When the condition started, ms since the epoch. */
  since: number;
  /** When the alert is due, ms since the epoch. */
  raise_at: number;
  trigger: { event_id: string; stream_id: string; stream_version: number; type: string };
  evidence: Record<string, unknown>;
}

/** What one event changed. */
export type ConditionChange =
  | { change: "started"; instance: ConditionInstance }
  | {
    change: "ended";
    alert_id: string;
    kind: AlertKind;
    reason: string;
    evidence: Record<string, unknown>;
  };

/** The error-rate figures over a window. */
export interface ErrorRate {
  /** Jobs that ended (completed, failed, timed out) in the window. */
  jobs_ended: number;
  /** Of those, failed or timed out. */
  failed: number;
  /** failed / jobs_ended, 0 when none ended. */
  error_rate: number;
  window_seconds: number;
  /** The window, RFC 3339. */
  from: string;
  to: string;
}

const TIME_FIELDS = [
  "disconnected_at",
  "connected_at",
  "completed_at",
  "timed_out_at",
  "failed_at",
  "cancelled_at",
  "dispatched_at",
  "queued_at",
  "created_at",
];

/**
 * Milliseconds of an RFC 3339 instant. The engine writes `toISOString()`'s form
 * (`2026-06-01T12:00:00.000Z`), read here digit by digit: several times cheaper than
 * `Date.parse`, which matters on a replay of millions of events. Other forms go to
 * `Date.parse`.
 */
function instantMs(v: string): number {
  if (v.length === 24 && v.charCodeAt(10) === 84 && v.charCodeAt(23) === 90) {
    let ok = true;
    const n = (from: number, to: number) => {
      let x = 0;
      for (let i = from; i < to; i++) {
        const c = v.charCodeAt(i) - 48;
        if (c < 0 || c > 9) ok = false;
        x = x * 10 + c;
      }
      return x;
    };
    const t = Date.UTC(n(0, 4), n(5, 7) - 1, n(8, 10), n(11, 13), n(14, 16), n(17, 19), n(20, 23));
    if (ok) return t;
  }
  return Date.parse(v);
}

/** An event's time in ms: its first data time field, else `recorded_at`. */
export function eventTime(event: RecordedEvent): number {
  for (const field of TIME_FIELDS) {
    const v = event.data[field];
    if (typeof v === "string") {
      const t = instantMs(v);
      if (!Number.isNaN(t)) return t;
    }
  }
  return event.recordedAt.getTime();
}

/** Whether a `job.retry_scheduled` or `job.timed_out` is a missed deadline. */
function isTimeout(event: RecordedEvent): boolean {
  if (event.type === "job.timed_out") return true;
  return event.type === "job.retry_scheduled" &&
    (event.data.error_type === "job_timeout" ||
      (event.data.error_type === undefined && event.data.error === "Job exceeded its timeout"));
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The answer of most events: nothing changed (shared, never mutated). */
const NONE: readonly ConditionChange[] = Object.freeze([]);

/** The conditions' fold. Feed it every event of the log, in log order. */
export class AlertConditions {
  readonly #config: AlertConfig;
  readonly #on: Set<AlertKind>;
  readonly #timeouts: boolean;
  readonly #errorRates: boolean;
  readonly #backlogs: boolean;
  /** Disconnected robots: robot id → instance. */
  readonly #offline = new Map<string, ConditionInstance>();
  /**
   * Jobs that ended, in log order: time (ms) and whether they failed. Entries before
   * `#head` have left the window (kept until compacted); `#inWindow` and `#failedInWindow`
   * count the rest, so a job's end costs O(1) however many jobs the window holds.
   */
  #ended: { t: number; failed: boolean }[] = [];
  #head = 0;
  #inWindow = 0;
  #failedInWindow = 0;
  #errorRate: ConditionInstance | null = null;
  readonly #queued = new Set<string>();
  #backlog: ConditionInstance | null = null;
  #backlogMax = 0;

  constructor(config: AlertConfig) {
    this.#config = config;
    this.#on = new Set(config.kinds);
    this.#timeouts = this.#on.has("job_timeout");
    this.#errorRates = this.#on.has("high_error_rate");
    this.#backlogs = this.#on.has("queue_backlog");
  }

  /** Applies one event; returns the conditions it started or ended. */
  /**
   * The conditions folded from the log, for a start-up checkpoint
   * (`engine/startup_checkpoint.ts`; live references, serialised at once).
   */
  checkpointState(): unknown {
    return {
      offline: this.#offline,
      ended: this.#ended,
      head: this.#head,
      inWindow: this.#inWindow,
      failedInWindow: this.#failedInWindow,
      errorRate: this.#errorRate,
      queued: this.#queued,
      backlog: this.#backlog,
      backlogMax: this.#backlogMax,
    };
  }

  /** Replaces the folded conditions with those of {@linkcode AlertConditions.checkpointState}. */
  restoreState(state: unknown): void {
    const s = state as {
      offline: Map<string, ConditionInstance>;
      ended: { t: number; failed: boolean }[];
      head: number;
      inWindow: number;
      failedInWindow: number;
      errorRate: ConditionInstance | null;
      queued: Set<string>;
      backlog: ConditionInstance | null;
      backlogMax: number;
    };
    this.#offline.clear();
    for (const [k, v] of s.offline) this.#offline.set(k, v);
    this.#ended = s.ended;
    this.#head = s.head;
    this.#inWindow = s.inWindow;
    this.#failedInWindow = s.failedInWindow;
    this.#errorRate = s.errorRate;
    this.#queued.clear();
    for (const id of s.queued) this.#queued.add(id);
    this.#backlog = s.backlog;
    this.#backlogMax = s.backlogMax;
  }

  apply(event: RecordedEvent): readonly ConditionChange[] {
    const type = event.type;
    if (event.streamId.startsWith("robot-")) {
      if (!this.#on.has("robot_disconnected")) return NONE;
      const robotId = event.streamId.slice(6);
      if (type === "robot.disconnected" && !this.#offline.has(robotId)) {
        const since = eventTime(event);
        const after = this.#config.robotOfflineAfter;
        const reason = String(event.data.reason ?? "unknown");
        const instance = this.#instance(event, "robot_disconnected", "warning", {
          subject: { robot_id: robotId },
          message: `Robot ${robotId} has been disconnected for ${after} s (${reason})`,
          since,
          raise_at: since + after * 1000,
          evidence: {
            robot_id: robotId,
            reason,
            disconnected_at: iso(since),
            offline_after_seconds: after,
          },
        });
        this.#offline.set(robotId, instance);
        return [{ change: "started", instance }];
      } else if (type === "robot.connected") {
        const instance = this.#offline.get(robotId);
        if (instance) {
          this.#offline.delete(robotId);
          return [{
            change: "ended",
            alert_id: instance.alert_id,
            kind: instance.kind,
            reason: "robot reconnected",
            evidence: { robot_id: robotId, connected_at: iso(eventTime(event)) },
          }];
        }
      }
      return NONE;
    }
    if (event.streamId.startsWith(ALERT_STREAM_PREFIX)) {
      // A high error rate that the window's sliding ended (recorded by some node's timer).
      if (type === "alert.resolved" && this.#errorRate?.alert_id === event.streamId.slice(6)) {
        this.#errorRate = null;
      }
      return NONE;
    }
    if (!event.streamId.startsWith("job-")) return NONE;
    // Replay folds every job event through here: most types leave at once, and the work per
    // event is a few comparisons (no string slicing, no date parsing) unless it matters.
    let joins = false;
    let ended = false;
    switch (type) {
      case "job.queued":
      case "job.rejected":
      case "job.retry_scheduled":
        joins = true;
        break;
      case "job.completed":
      case "job.failed":
      case "job.timed_out":
        ended = true;
        break;
      case "job.dispatched":
      case "job.cancelled":
        break;
      default:
        return NONE;
    }
    let changes: ConditionChange[] | null = null;
    if (this.#timeouts && (type === "job.timed_out" || type === "job.retry_scheduled")) {
      if (isTimeout(event)) changes = [this.#timeoutStarted(event)];
    }
    if (ended && this.#errorRates) {
      const c = this.#applyEnded(event);
      if (c.length) (changes ??= []).push(...c);
    }
    if (this.#backlogs) {
      const c = this.#applyQueue(event, joins);
      if (c.length) (changes ??= []).push(...c);
    }
    return changes ?? NONE;
  }

  #timeoutStarted(event: RecordedEvent): ConditionChange {
    const jobId = event.streamId.slice(4);
    const since = eventTime(event);
    const retried = event.type === "job.retry_scheduled";
    return {
      change: "started",
      instance: this.#instance(event, "job_timeout", "warning", {
        subject: { job_id: jobId },
        message: retried
          ? `Job ${jobId} exceeded its timeout; retry ${event.data.retry} at ${event.data.retry_at}`
          : `Job ${jobId} exceeded its timeout and ended timed out`,
        since,
        raise_at: since,
        evidence: {
          job_id: jobId,
          timed_out_at: iso(since),
          lease_id: event.data.lease_id ?? null,
          retried,
          retry_at: retried ? event.data.retry_at ?? null : null,
        },
      }),
    };
  }

  #applyEnded(event: RecordedEvent): readonly ConditionChange[] {
    const t = eventTime(event);
    const failed = event.type !== "job.completed";
    this.#ended.push({ t, failed });
    this.#inWindow++;
    if (failed) this.#failedInWindow++;
    const windowMs = this.#config.errorRateWindow * 1000;
    // Times are nearly in log order (one clock per writer): slide the head past the old.
    while (this.#head < this.#ended.length && this.#ended[this.#head].t < t - windowMs) {
      this.#inWindow--;
      if (this.#ended[this.#head].failed) this.#failedInWindow--;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#ended.length) {
      this.#ended = this.#ended.slice(this.#head);
      this.#head = 0;
    }
    const holds = this.#inWindow >= this.#config.errorRateMinJobs &&
      this.#failedInWindow / this.#inWindow >= this.#config.errorRateThreshold;
    if (!holds === !this.#errorRate) return NONE; // no change: the common case, kept cheap
    const rate: ErrorRate = {
      jobs_ended: this.#inWindow,
      failed: this.#failedInWindow,
      error_rate: this.#inWindow ? this.#failedInWindow / this.#inWindow : 0,
      window_seconds: this.#config.errorRateWindow,
      from: iso(t - windowMs),
      to: iso(t),
    };
    if (!this.#errorRate && holds) {
      const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;
      this.#errorRate = this.#instance(event, "high_error_rate", "critical", {
        subject: {},
        message:
          `${rate.failed} of ${rate.jobs_ended} jobs that ended in the last ${rate.window_seconds} s failed (${
            pct(rate.error_rate)
          }; threshold ${pct(this.#config.errorRateThreshold)})`,
        since: t,
        raise_at: t,
        evidence: {
          ...rate,
          threshold: this.#config.errorRateThreshold,
          min_jobs: this.#config.errorRateMinJobs,
        },
      });
      return [{ change: "started", instance: this.#errorRate }];
    }
    if (this.#errorRate && !holds) {
      const ended = this.#errorRate;
      this.#errorRate = null;
      return [{
        change: "ended",
        alert_id: ended.alert_id,
        kind: ended.kind,
        reason: "error rate below the threshold",
        evidence: { ...rate, threshold: this.#config.errorRateThreshold },
      }];
    }
    return NONE;
  }

  #applyQueue(event: RecordedEvent, joins: boolean): readonly ConditionChange[] {
    const before = this.#queued.size;
    if (joins) this.#queued.add(event.streamId);
    else this.#queued.delete(event.streamId);
    const depth = this.#queued.size;
    if (depth === before) return NONE;
    const threshold = this.#config.queueDepth;
    if (!this.#backlog && depth > threshold) {
      const since = eventTime(event);
      const duration = this.#config.queueDuration;
      this.#backlogMax = depth;
      this.#backlog = this.#instance(event, "queue_backlog", "warning", {
        subject: {},
        message: `More than ${threshold} jobs queued for ${duration} s`,
        since,
        raise_at: since + duration * 1000,
        evidence: {
          threshold,
          duration_seconds: duration,
          over_since: iso(since),
          depth_at_start: depth,
        },
      });
      return [{ change: "started", instance: this.#backlog }];
    }
    if (this.#backlog && depth <= threshold) {
      const ended = this.#backlog;
      this.#backlog = null;
      return [{
        change: "ended",
        alert_id: ended.alert_id,
        kind: ended.kind,
        reason: "queue depth back to the threshold or below",
        evidence: { depth, threshold, max_depth: this.#backlogMax, at: iso(eventTime(event)) },
      }];
    }
    if (this.#backlog) this.#backlogMax = Math.max(this.#backlogMax, depth);
    return NONE;
  }

  /** Queued jobs now (as folded). */
  get queueDepth(): number {
    return this.#queued.size;
  }

  /** Largest depth seen since the current backlog started (0 when there is none). */
  get backlogMaxDepth(): number {
    return this.#backlog ? this.#backlogMax : 0;
  }

  /** The error rate over the window ending at `nowMs`. */
  errorRate(nowMs: number): ErrorRate {
    const windowSeconds = this.#config.errorRateWindow;
    const from = nowMs - windowSeconds * 1000;
    let ended = 0;
    let failed = 0;
    for (let i = this.#head; i < this.#ended.length; i++) {
      const e = this.#ended[i];
      if (e.t < from || e.t > nowMs) continue;
      ended++;
      if (e.failed) failed++;
    }
    return {
      jobs_ended: ended,
      failed,
      error_rate: ended ? failed / ended : 0,
      window_seconds: windowSeconds,
      from: iso(from),
      to: iso(nowMs),
    };
  }

  #errorRateHolds(rate: ErrorRate): boolean {
    return rate.jobs_ended >= this.#config.errorRateMinJobs &&
      rate.error_rate >= this.#config.errorRateThreshold;
  }

  /** Whether the error-rate condition holds over the window ending at `nowMs`. */
  errorRateHolds(nowMs: number): boolean {
    return this.#errorRateHolds(this.errorRate(nowMs));
  }

  /** The current high-error-rate instance (until it ends), else null. */
  get errorRateInstance(): ConditionInstance | null {
    return this.#errorRate;
  }

  /**
   * The next instant (ms) at which the window ending then holds fewer jobs than the one
   * ending at `nowMs` (the oldest job in it leaves), or null when it is empty.
   */
  nextWindowChange(nowMs: number): number | null {
    const from = nowMs - this.#config.errorRateWindow * 1000;
    for (let i = this.#head; i < this.#ended.length; i++) {
      const t = this.#ended[i].t;
      if (t >= from) return t + this.#config.errorRateWindow * 1000 + 1;
    }
    return null;
  }

  /**
   * Whether the condition of alert `alertId` still holds as folded (job timeouts: false, they
   * are events, not states).
   */
  holds(alertId: string): boolean {
    if (this.#errorRate?.alert_id === alertId || this.#backlog?.alert_id === alertId) return true;
    for (const instance of this.#offline.values()) {
      if (instance.alert_id === alertId) return true;
    }
    return false;
  }

  #instance(
    event: RecordedEvent,
    kind: AlertKind,
    severity: AlertSeverity,
    rest: Pick<ConditionInstance, "subject" | "message" | "since" | "raise_at" | "evidence">,
  ): ConditionInstance {
    return {
      alert_id: `${kind}-${event.eventId}`,
      kind,
      severity,
      trigger: {
        event_id: event.eventId,
        stream_id: event.streamId,
        stream_version: event.streamVersion,
        type: event.type,
      },
      ...rest,
    };
  }
}
