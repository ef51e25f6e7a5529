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
 * **Per org.** Every condition belongs to an org (`engine/org_index.ts`): a robot's
 * disconnection to the robot's org, a job timeout to the job's; the error rate and the queue
 * depth are counted per org (each org has its own window and queue, with the same
 * thresholds), so one org's failures or backlog never raise an alert in another org.
 *
 * @module
 */
import type { RecordedEvent } from "../events/mod.ts";
import { OrgIndex } from "../engine/org_index.ts";
import type { AlertConfig, AlertKind } from "./alert_config.ts";
import { ALERT_STREAM_PREFIX, type AlertSeverity } from "./alert_state.ts";

/** One occurrence of a condition: what `alert.raised` will say. */
export interface ConditionInstance {
  /** `<kind>-<event id of the trigger>`. */
  alert_id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  /** The org the alert belongs to: the robot's, the job's, or the org whose figures met it. */
  org_id: string;
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

/**
 * One org's error-rate window and queue. Jobs that ended, in log order: time (ms) and whether
 * they failed. Entries before `head` have left the window (kept until compacted);
 * `inWindow` and `failedInWindow` count the rest, so a job's end costs O(1) however many
 * jobs the window holds.
 */
interface OrgFigures {
  ended: { t: number; failed: boolean }[];
  head: number;
  inWindow: number;
  failedInWindow: number;
  errorRate: ConditionInstance | null;
  queued: Set<string>;
  backlog: ConditionInstance | null;
  backlogMax: number;
}

/** Options of {@linkcode AlertConditions}. */
export interface AlertConditionsOptions {
  /**
   * The org of a stream, as folded from the same log (`EngineCore.orgs.orgOf`). It must have
   * applied an event before the conditions get it (the engine folds the org index first).
   * @default an own {@linkcode OrgIndex} fed by {@linkcode AlertConditions.apply}
   */
  orgOf?: (streamId: string) => string;
}

/** The conditions' fold. Feed it every event of the log, in log order. */
export class AlertConditions {
  readonly #config: AlertConfig;
  readonly #on: Set<AlertKind>;
  readonly #timeouts: boolean;
  readonly #errorRates: boolean;
  readonly #backlogs: boolean;
  /** Set when no `orgOf` was given: fed here. */
  readonly #ownOrgs: OrgIndex | null;
  readonly #orgOf: (streamId: string) => string;
  /** Disconnected robots: robot id → instance. */
  readonly #offline = new Map<string, ConditionInstance>();
  /** Error-rate windows and queues, by org. */
  readonly #orgs = new Map<string, OrgFigures>();
  /** The last org looked up (most logs have one): saves a map lookup per event. */
  #last: { org: string; figures: OrgFigures } | null = null;

  constructor(config: AlertConfig, options: AlertConditionsOptions = {}) {
    this.#config = config;
    this.#on = new Set(config.kinds);
    this.#timeouts = this.#on.has("job_timeout");
    this.#errorRates = this.#on.has("high_error_rate");
    this.#backlogs = this.#on.has("queue_backlog");
    if (options.orgOf) {
      this.#ownOrgs = null;
      this.#orgOf = options.orgOf;
    } else {
      const orgs = new OrgIndex();
      this.#ownOrgs = orgs;
      this.#orgOf = (streamId) => orgs.orgOf(streamId);
    }
  }

  #figures(org: string): OrgFigures {
    if (this.#last?.org === org) return this.#last.figures;
    let figures = this.#orgs.get(org);
    if (!figures) {
      figures = {
        ended: [],
        head: 0,
        inWindow: 0,
        failedInWindow: 0,
        errorRate: null,
        queued: new Set(),
        backlog: null,
        backlogMax: 0,
      };
      this.#orgs.set(org, figures);
    }
    this.#last = { org, figures };
    return figures;
  }

  /**
   * The conditions folded from the log, for a start-up checkpoint
   * (`engine/startup_checkpoint.ts`; live references, serialised at once).
   */
  checkpointState(): unknown {
    return {
      offline: this.#offline,
      orgs: this.#orgs,
      ownOrgs: this.#ownOrgs?.checkpointState() ?? null,
    };
  }

  /** Replaces the folded conditions with those of {@linkcode AlertConditions.checkpointState}. */
  restoreState(state: unknown): void {
    const s = state as {
      offline: Map<string, ConditionInstance>;
      orgs: Map<string, OrgFigures>;
      ownOrgs: unknown;
    };
    this.#offline.clear();
    for (const [k, v] of s.offline) this.#offline.set(k, v);
    this.#orgs.clear();
    for (const [k, v] of s.orgs) this.#orgs.set(k, v);
    this.#last = null;
    if (this.#ownOrgs && s.ownOrgs !== null) this.#ownOrgs.restoreState(s.ownOrgs);
  }

  /** Applies one event; returns the conditions it started or ended. */
  apply(event: RecordedEvent): readonly ConditionChange[] {
    this.#ownOrgs?.apply(event);
    const type = event.type;
    if (event.streamId.startsWith("robot-")) {
      if (!this.#on.has("robot_disconnected")) return NONE;
      const robotId = event.streamId.slice(6);
      if (type === "robot.disconnected" && !this.#offline.has(robotId)) {
        const since = eventTime(event);
        const after = this.#config.robotOfflineAfter;
        const reason = String(event.data.reason ?? "unknown");
        const instance = this.#instance(event, "robot_disconnected", "warning", {
          org_id: this.#orgOf(event.streamId),
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
      if (type === "alert.resolved") {
        const id = event.streamId.slice(ALERT_STREAM_PREFIX.length);
        for (const figures of this.#orgs.values()) {
          if (figures.errorRate?.alert_id === id) figures.errorRate = null;
        }
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
    const org = this.#orgOf(event.streamId);
    let changes: ConditionChange[] | null = null;
    if (this.#timeouts && (type === "job.timed_out" || type === "job.retry_scheduled")) {
      if (isTimeout(event)) changes = [this.#timeoutStarted(event, org)];
    }
    if (ended && this.#errorRates) {
      const c = this.#applyEnded(event, org);
      if (c.length) (changes ??= []).push(...c);
    }
    if (this.#backlogs) {
      const c = this.#applyQueue(event, org, joins);
      if (c.length) (changes ??= []).push(...c);
    }
    return changes ?? NONE;
  }

  #timeoutStarted(event: RecordedEvent, org: string): ConditionChange {
    const jobId = event.streamId.slice(4);
    const since = eventTime(event);
    const retried = event.type === "job.retry_scheduled";
    return {
      change: "started",
      instance: this.#instance(event, "job_timeout", "warning", {
        org_id: org,
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

  #applyEnded(event: RecordedEvent, org: string): readonly ConditionChange[] {
    const f = this.#figures(org);
    const t = eventTime(event);
    const failed = event.type !== "job.completed";
    f.ended.push({ t, failed });
    f.inWindow++;
    if (failed) f.failedInWindow++;
    const windowMs = this.#config.errorRateWindow * 1000;
    // Times are nearly in log order (one clock per writer): slide the head past the old.
    while (f.head < f.ended.length && f.ended[f.head].t < t - windowMs) {
      f.inWindow--;
      if (f.ended[f.head].failed) f.failedInWindow--;
      f.head++;
    }
    if (f.head > 1024 && f.head * 2 > f.ended.length) {
      f.ended = f.ended.slice(f.head);
      f.head = 0;
    }
    const holds = f.inWindow >= this.#config.errorRateMinJobs &&
      f.failedInWindow / f.inWindow >= this.#config.errorRateThreshold;
    if (!holds === !f.errorRate) return NONE; // no change: the common case, kept cheap
    const rate: ErrorRate = {
      jobs_ended: f.inWindow,
      failed: f.failedInWindow,
      error_rate: f.inWindow ? f.failedInWindow / f.inWindow : 0,
      window_seconds: this.#config.errorRateWindow,
      from: iso(t - windowMs),
      to: iso(t),
    };
    if (!f.errorRate && holds) {
      const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;
      f.errorRate = this.#instance(event, "high_error_rate", "critical", {
        org_id: org,
        subject: {},
        message:
          `${rate.failed} of ${rate.jobs_ended} jobs of org ${org} that ended in the last ${rate.window_seconds} s failed (${
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
      return [{ change: "started", instance: f.errorRate }];
    }
    if (f.errorRate && !holds) {
      const ended = f.errorRate;
      f.errorRate = null;
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

  #applyQueue(event: RecordedEvent, org: string, joins: boolean): readonly ConditionChange[] {
    const f = this.#figures(org);
    const before = f.queued.size;
    if (joins) f.queued.add(event.streamId);
    else f.queued.delete(event.streamId);
    const depth = f.queued.size;
    if (depth === before) return NONE;
    const threshold = this.#config.queueDepth;
    if (!f.backlog && depth > threshold) {
      const since = eventTime(event);
      const duration = this.#config.queueDuration;
      f.backlogMax = depth;
      f.backlog = this.#instance(event, "queue_backlog", "warning", {
        org_id: org,
        subject: {},
        message: `More than ${threshold} jobs of org ${org} queued for ${duration} s`,
        since,
        raise_at: since + duration * 1000,
        evidence: {
          threshold,
          duration_seconds: duration,
          over_since: iso(since),
          depth_at_start: depth,
        },
      });
      return [{ change: "started", instance: f.backlog }];
    }
    if (f.backlog && depth <= threshold) {
      const ended = f.backlog;
      f.backlog = null;
      return [{
        change: "ended",
        alert_id: ended.alert_id,
        kind: ended.kind,
        reason: "queue depth back to the threshold or below",
        evidence: { depth, threshold, max_depth: f.backlogMax, at: iso(eventTime(event)) },
      }];
    }
    if (f.backlog) f.backlogMax = Math.max(f.backlogMax, depth);
    return NONE;
  }

  /** Queued jobs of an org now (as folded). */
  queueDepth(orgId: string): number {
    return this.#orgs.get(orgId)?.queued.size ?? 0;
  }

  /** Largest depth of an org's queue since its current backlog started (0 without one). */
  backlogMaxDepth(orgId: string): number {
    const f = this.#orgs.get(orgId);
    return f?.backlog ? f.backlogMax : 0;
  }

  /** An org's error rate over the window ending at `nowMs`. */
  errorRate(orgId: string, nowMs: number): ErrorRate {
    const windowSeconds = this.#config.errorRateWindow;
    const from = nowMs - windowSeconds * 1000;
    let ended = 0;
    let failed = 0;
    const f = this.#orgs.get(orgId);
    if (f) {
      for (let i = f.head; i < f.ended.length; i++) {
        const e = f.ended[i];
        if (e.t < from || e.t > nowMs) continue;
        ended++;
        if (e.failed) failed++;
      }
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

  /** Whether an org's error-rate condition holds over the window ending at `nowMs`. */
  errorRateHolds(orgId: string, nowMs: number): boolean {
    const rate = this.errorRate(orgId, nowMs);
    return rate.jobs_ended >= this.#config.errorRateMinJobs &&
      rate.error_rate >= this.#config.errorRateThreshold;
  }

  /** The current high-error-rate instances (one per org at most, until each ends). */
  errorRateInstances(): ConditionInstance[] {
    const out: ConditionInstance[] = [];
    for (const f of this.#orgs.values()) if (f.errorRate) out.push(f.errorRate);
    return out;
  }

  /**
   * The next instant (ms) at which an org's window ending then holds fewer jobs than the one
   * ending at `nowMs` (the oldest job in it leaves), or null when it is empty.
   */
  nextWindowChange(orgId: string, nowMs: number): number | null {
    const f = this.#orgs.get(orgId);
    if (!f) return null;
    const from = nowMs - this.#config.errorRateWindow * 1000;
    for (let i = f.head; i < f.ended.length; i++) {
      const t = f.ended[i].t;
      if (t >= from) return t + this.#config.errorRateWindow * 1000 + 1;
    }
    return null;
  }

  /**
   * Whether the condition of alert `alertId` still holds as folded (job timeouts: false, they
   * are events, not states).
   */
  holds(alertId: string): boolean {
    for (const f of this.#orgs.values()) {
      if (f.errorRate?.alert_id === alertId || f.backlog?.alert_id === alertId) return true;
    }
    for (const instance of this.#offline.values()) {
      if (instance.alert_id === alertId) return true;
    }
    return false;
  }

  #instance(
    event: RecordedEvent,
    kind: AlertKind,
    severity: AlertSeverity,
    rest: Pick<
      ConditionInstance,
      "org_id" | "subject" | "message" | "since" | "raise_at" | "evidence"
    >,
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
