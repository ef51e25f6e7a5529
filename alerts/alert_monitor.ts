/**
 * The alert monitor: folds the log into alert conditions ({@linkcode AlertConditions}) and
 * alert views (`alert-<id>` streams), raises and resolves alerts as events, delivers them
 * to webhooks, and answers the API.
 *
 * **Once across orchestrators.** Every node folds the same log, so every node derives the
 * same alert id for a condition (`<kind>-<event id of its trigger>`) and may try to raise
 * it when it is due; `alert.raised` is appended with expected version 0 of its stream, so
 * one append wins and the others get a version conflict and do nothing. Only the winner
 * delivers the notification. A resolution is appended with the stream's current version
 * (read back and tried again when a delivery record got in first) and is skipped when the
 * stream already holds one; its winner delivers the `alert.resolved` notification.
 *
 * **Replay.** While the log is replayed at start-up nothing is written: conditions and
 * alerts are folded. {@linkcode AlertMonitor.start} then raises the conditions that are due
 * and have no alert yet (a job timeout only when it happened in the last hour: older ones
 * are history, not news) and resolves the open alerts whose condition ended.
 *
 * Not guaranteed: a delivery whose node stops before it is done is not taken up by another
 * node or after a restart (its attempts are in the log).
 *
 * @module
 */
import type { Clock } from "../engine/clock.ts";
import { type Logger, silentLogger } from "../engine/logger.ts";
import {
  type RecordedEvent,
  type SqlEventStore,
  type SqlTx,
  WrongExpectedVersionError,
} from "../events/mod.ts";
import { type AlertConfig, type AlertKind, DEFAULT_ALERT_CONFIG } from "./alert_config.ts";
import { AlertConditions, type ConditionInstance } from "./alert_conditions.ts";
import {
  ALERT_STREAM_PREFIX,
  type AlertStatus,
  type AlertView,
  applyAlertEvent,
} from "./alert_state.ts";
import { deliverWebhook, webhookLabel } from "./webhook_delivery.ts";

/** A job timeout older than this (ms) when the monitor starts is not raised. */
export const CATCH_UP_HORIZON_MS = 3_600_000;

/** Thrown for an unknown alert id (HTTP 404). */
export class AlertNotFoundError extends Error {
  override name = "AlertNotFoundError";
  readonly alertId: string;
  constructor(alertId: string) {
    super(`Alert ${alertId} does not exist`);
    this.alertId = alertId;
  }
}

/** Thrown when acknowledging an alert that already is (HTTP 409). */
export class AlertAlreadyAcknowledgedError extends Error {
  override name = "AlertAlreadyAcknowledgedError";
  readonly alert: AlertView;
  constructor(alert: AlertView) {
    super(`Alert ${alert.alert_id} was already acknowledged at ${alert.acknowledged_at}`);
    this.alert = alert;
  }
}

/** Options of {@linkcode AlertMonitor}. */
export interface AlertMonitorOptions {
  store: SqlEventStore;
  clock: Clock;
  /** @default DEFAULT_ALERT_CONFIG */
  config?: Partial<AlertConfig>;
  /** Jitter of webhook retries, in [0, 1). @default Math.random */
  random?: () => number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** @default silentLogger */
  logger?: Logger;
  /** Resolves once the read models applied the event at a position (read your writes). */
  settled?: (position: number) => Promise<void>;
  /**
   * The org of a stream, folded from the same log before the monitor gets each event
   * (`EngineCore.orgs.orgOf`). @default the conditions' own fold ({@linkcode AlertConditions})
   */
  orgOf?: (streamId: string) => string;
  /**
   * The leader's fence (cluster mode, `engine/cluster.ts`), or null on a single node:
   * `alert.raised` and `alert.resolved`, which only the evaluating leader writes, run its
   * `check` in the append's transaction (a former leader that comes back is refused with
   * `FencedError`) and carry its `metadata` (`{leader_node, leader_token}`). Not
   * `alert.acknowledged` (an operator's command, any node) nor `alert.delivery_attempted`
   * (the record of a webhook call already made). @default () => null
   */
  leaderFence?: () => {
    check(tx: SqlTx): Promise<void>;
    metadata(): Record<string, unknown>;
  } | null;
}

/** Filters of {@linkcode AlertMonitor.list}. */
export interface AlertFilter {
  /** Only this org's alerts. @default every org's */
  org_id?: string;
  status?: AlertStatus;
  kind?: AlertKind;
  /** @default 100 */
  limit?: number;
}

/** The alert monitor (see the module doc). */
export class AlertMonitor {
  readonly config: AlertConfig;
  readonly #store: SqlEventStore;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #fetch: typeof fetch | undefined;
  readonly #logger: Logger;
  readonly #settled: (position: number) => Promise<void>;
  readonly #conditions: AlertConditions;
  readonly #alerts = new Map<string, AlertView>();
  /** Conditions due (or coming due) with no alert in the log yet. */
  readonly #pending = new Map<string, ConditionInstance>();
  /** Open alerts whose condition ended: alert id → why. */
  readonly #toResolve = new Map<string, { reason: string; evidence: Record<string, unknown> }>();
  readonly #timers = new Map<string, unknown>();
  readonly #busy = new Set<string>();
  readonly #tasks = new Set<Promise<unknown>>();
  #windowTimer: { at: number; handle: unknown } | null = null;
  #live = false;
  #abort = new AbortController();

  readonly #leaderFence: NonNullable<AlertMonitorOptions["leaderFence"]>;

  constructor(options: AlertMonitorOptions) {
    this.config = { ...DEFAULT_ALERT_CONFIG, ...options.config };
    this.#store = options.store;
    this.#clock = options.clock;
    this.#random = options.random ?? Math.random;
    this.#fetch = options.fetch;
    this.#logger = options.logger ?? silentLogger;
    this.#settled = options.settled ?? (() => Promise.resolve());
    this.#leaderFence = options.leaderFence ?? (() => null);
    this.#conditions = new AlertConditions(this.config, { orgOf: options.orgOf });
  }

  /** Folds a batch of events in log order (replay and live alike). */
  apply(events: readonly RecordedEvent[]): void {
    for (const event of events) {
      if (event.streamId.startsWith(ALERT_STREAM_PREFIX)) this.#applyAlert(event);
      for (const c of this.#conditions.apply(event)) {
        if (c.change === "started") {
          if (!this.#alerts.has(c.instance.alert_id)) {
            this.#pending.set(c.instance.alert_id, c.instance);
          }
        } else {
          this.#pending.delete(c.alert_id);
          this.#disarm(c.alert_id);
          const alert = this.#alerts.get(c.alert_id);
          if (alert && alert.status !== "resolved") {
            this.#toResolve.set(c.alert_id, { reason: c.reason, evidence: c.evidence });
          }
        }
      }
    }
    if (this.#live) this.#reconcile();
  }

  #applyAlert(event: RecordedEvent): void {
    const id = event.streamId.slice(ALERT_STREAM_PREFIX.length);
    const view = applyAlertEvent(this.#alerts.get(id), event);
    if (!view) return;
    this.#alerts.set(id, view);
    if (event.type === "alert.raised") {
      this.#pending.delete(id);
      this.#disarm(id);
      // Raised by a node whose fold had not yet seen the condition end (or under other
      // thresholds): a state alert whose condition no longer holds is resolved.
      if (view.kind !== "job_timeout" && !this.#conditions.holds(id)) {
        this.#toResolve.set(id, {
          reason: "condition no longer holds",
          evidence: { checked_at: new Date(this.#clock.now()).toISOString() },
        });
      }
    } else if (event.type === "alert.resolved") {
      this.#toResolve.delete(id);
    }
  }

  /** Goes live after the replay: raises what is due, resolves what ended, arms timers. */
  start(): void {
    this.#live = true;
    const now = this.#clock.now();
    for (const [id, instance] of this.#pending) {
      if (instance.kind === "job_timeout" && instance.since < now - CATCH_UP_HORIZON_MS) {
        this.#pending.delete(id);
      }
    }
    this.#reconcile();
  }

  /**
   * The alerts and conditions folded from the log (before `start`), for a start-up
   * checkpoint (`engine/startup_checkpoint.ts`; live references, serialised at once).
   */
  checkpointState(): unknown {
    return {
      alerts: this.#alerts,
      pending: this.#pending,
      toResolve: this.#toResolve,
      conditions: this.#conditions.checkpointState(),
    };
  }

  /** Replaces the folded state with one from {@linkcode AlertMonitor.checkpointState}. */
  restoreState(state: unknown): void {
    const s = state as {
      alerts: Map<string, AlertView>;
      pending: Map<string, ConditionInstance>;
      toResolve: Map<string, { reason: string; evidence: Record<string, unknown> }>;
      conditions: unknown;
    };
    const copy = <V>(to: Map<string, V>, from: Map<string, V>) => {
      to.clear();
      for (const [k, v] of from) to.set(k, v);
    };
    copy(this.#alerts, s.alerts);
    copy(this.#pending, s.pending);
    copy(this.#toResolve, s.toResolve);
    this.#conditions.restoreState(s.conditions);
  }

  /** Stops timers and deliveries; resolves once the work in flight has ended. */
  async stop(): Promise<void> {
    this.#live = false;
    this.#abort.abort();
    for (const handle of this.#timers.values()) this.#clock.clearTimeout(handle);
    this.#timers.clear();
    if (this.#windowTimer) this.#clock.clearTimeout(this.#windowTimer.handle);
    this.#windowTimer = null;
    await Promise.allSettled([...this.#tasks]);
  }

  /** Alerts, newest first, filtered. */
  list(filter: AlertFilter = {}): AlertView[] {
    const out: AlertView[] = [];
    for (const view of this.#alerts.values()) {
      if (filter.org_id !== undefined && view.org_id !== filter.org_id) continue;
      if (filter.status && view.status !== filter.status) continue;
      if (filter.kind && view.kind !== filter.kind) continue;
      out.push(view);
    }
    out.sort((a, b) =>
      b.raised_at.localeCompare(a.raised_at) || b.alert_id.localeCompare(a.alert_id)
    );
    return out.slice(0, filter.limit ?? 100);
  }

  /** Conditions that started and have no alert yet, due at their `raise_at`. */
  pending(): ConditionInstance[] {
    return [...this.#pending.values()];
  }

  /** One alert, or undefined. */
  get(alertId: string): AlertView | undefined {
    return this.#alerts.get(alertId);
  }

  /** Alerts by kind and status (for `/metrics`). */
  counts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const v of this.#alerts.values()) {
      const key = `${v.kind}|${v.status}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * Records `alert.acknowledged` (an open or resolved alert alike).
   * @param note An operator's note, at most 1000 characters (checked by the caller).
   * @returns The alert after the acknowledgement.
   * @throws {AlertNotFoundError} for an unknown id.
   * @throws {AlertAlreadyAcknowledgedError} when it already was.
   */
  async acknowledge(alertId: string, note: string | null = null): Promise<AlertView> {
    for (let attempt = 0;; attempt++) {
      const view = await this.#read(alertId);
      if (!view) throw new AlertNotFoundError(alertId);
      if (view.acknowledged_at !== null) throw new AlertAlreadyAcknowledgedError(view);
      try {
        const { events } = await this.#store.append([{
          streamId: ALERT_STREAM_PREFIX + alertId,
          expectedVersion: view.version,
          events: [{
            type: "alert.acknowledged",
            data: { acknowledged_at: new Date(this.#clock.now()).toISOString(), note },
            metadata: { schema_version: 1 },
          }],
        }]);
        await this.#settled(events[events.length - 1].globalPosition);
        let after = view;
        for (const e of events) after = applyAlertEvent(after, e) ?? after;
        return after;
      } catch (error) {
        // A delivery record (or another acknowledgement) got in first: read and decide again.
        if (error instanceof WrongExpectedVersionError && attempt < 5) continue;
        throw error;
      }
    }
  }

  /** Folds an alert's stream from the store (fresh, unlike the in-memory view). */
  async #read(alertId: string): Promise<AlertView | undefined> {
    let view: AlertView | undefined;
    for (const e of await this.#store.readStream(ALERT_STREAM_PREFIX + alertId)) {
      view = applyAlertEvent(view, e);
    }
    return view;
  }

  /** Arms raise timers for pending conditions, resolves ended ones, watches the window. */
  #reconcile(): void {
    for (const [id, instance] of this.#pending) {
      if (this.#timers.has(id) || this.#busy.has(id)) continue;
      if (instance.raise_at <= this.#clock.now()) {
        this.#track(this.#raise(id));
        continue;
      }
      this.#timers.set(
        id,
        this.#clock.setTimeout(() => {
          this.#timers.delete(id);
          this.#track(this.#raise(id));
        }, instance.raise_at - this.#clock.now()),
      );
    }
    for (const id of this.#toResolve.keys()) {
      if (!this.#busy.has(id)) this.#track(this.#resolve(id));
    }
    this.#watchWindow();
  }

  /**
   * While a high error rate is open (in any org), re-checks it when the oldest job leaves
   * its org's window: one timer, at the earliest such instant over the orgs.
   */
  #watchWindow(): void {
    const now = this.#clock.now();
    let at: number | null = null;
    for (const instance of this.#conditions.errorRateInstances()) {
      const t = this.#conditions.nextWindowChange(instance.org_id, now);
      if (t !== null && (at === null || t < at)) at = t;
    }
    if (this.#windowTimer && (at === null || this.#windowTimer.at !== at)) {
      this.#clock.clearTimeout(this.#windowTimer.handle);
      this.#windowTimer = null;
    }
    if (at === null || this.#windowTimer) return;
    this.#windowTimer = {
      at,
      handle: this.#clock.setTimeout(() => {
        this.#windowTimer = null;
        if (!this.#live) return;
        const t = this.#clock.now();
        for (const current of this.#conditions.errorRateInstances()) {
          if (this.#conditions.errorRateHolds(current.org_id, t)) continue;
          if (this.#alerts.has(current.alert_id)) {
            this.#toResolve.set(current.alert_id, {
              reason: "error rate below the threshold as the window slid",
              evidence: {
                ...this.#conditions.errorRate(current.org_id, t),
                threshold: this.config.errorRateThreshold,
              },
            });
          }
        }
        this.#reconcile();
      }, at - now),
    };
  }

  #track(task: Promise<unknown>): void {
    const t = task.catch((error) => console.error("alert monitor:", error)).finally(() =>
      this.#tasks.delete(t)
    );
    this.#tasks.add(t);
  }

  async #raise(id: string): Promise<void> {
    const instance = this.#pending.get(id);
    if (!this.#live || !instance || this.#alerts.has(id) || this.#busy.has(id)) return;
    this.#busy.add(id);
    try {
      const evidence = { ...instance.evidence };
      if (instance.kind === "queue_backlog") {
        evidence.depth_at_raise = this.#conditions.queueDepth(instance.org_id);
        evidence.max_depth = this.#conditions.backlogMaxDepth(instance.org_id);
      }
      const data = {
        alert_id: id,
        org_id: instance.org_id,
        kind: instance.kind,
        severity: instance.severity,
        subject: instance.subject,
        message: instance.message,
        raised_at: new Date(this.#clock.now()).toISOString(),
        trigger: instance.trigger,
        evidence,
      };
      let recorded: RecordedEvent[];
      try {
        const fence = this.#leaderFence();
        ({ events: recorded } = await this.#store.append([{
          streamId: ALERT_STREAM_PREFIX + id,
          expectedVersion: 0,
          events: [{
            type: "alert.raised",
            data,
            metadata: { schema_version: 1, ...fence?.metadata() },
          }],
        }], fence ? { guard: (tx) => fence.check(tx) } : {}));
      } catch (error) {
        if (error instanceof WrongExpectedVersionError) return; // another node raised it
        // The store is unreachable, or refused it: try again in a while (still pending).
        this.#logger.log("error", "alert not raised", { alert_id: id, error: String(error) });
        if (this.#live && this.#pending.has(id)) {
          this.#timers.set(
            id,
            this.#clock.setTimeout(() => {
              this.#timers.delete(id);
              this.#track(this.#raise(id));
            }, 5000),
          );
        }
        return;
      }
      this.#logger.log("warn", "alert raised", {
        alert_id: id,
        kind: instance.kind,
        org_id: instance.org_id,
      });
      const view = applyAlertEvent(undefined, recorded[0])!;
      this.#deliver(view, "alert.raised");
    } finally {
      this.#busy.delete(id);
      // A resolution asked for while the raise was being written (the window slid meanwhile)
      // was skipped as busy: do it now.
      if (this.#live && this.#toResolve.has(id)) this.#track(this.#resolve(id));
    }
  }

  async #resolve(id: string): Promise<void> {
    const why = this.#toResolve.get(id);
    if (!this.#live || !why || this.#busy.has(id)) return;
    this.#busy.add(id);
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const view = await this.#read(id);
        if (!view || view.status === "resolved") break;
        const data = {
          resolved_at: new Date(this.#clock.now()).toISOString(),
          reason: why.reason,
          evidence: why.evidence,
        };
        try {
          const fence = this.#leaderFence();
          const { events } = await this.#store.append([{
            streamId: ALERT_STREAM_PREFIX + id,
            expectedVersion: view.version,
            events: [{
              type: "alert.resolved",
              data,
              metadata: { schema_version: 1, ...fence?.metadata() },
            }],
          }], fence ? { guard: (tx) => fence.check(tx) } : {});
          this.#logger.log("info", "alert resolved", { alert_id: id, reason: why.reason });
          let after: AlertView = view;
          for (const e of events) after = applyAlertEvent(after, e) ?? after;
          this.#deliver(after, "alert.resolved");
          break;
        } catch (error) {
          if (error instanceof WrongExpectedVersionError) continue; // read again
          throw error;
        }
      }
      this.#toResolve.delete(id);
    } finally {
      this.#busy.delete(id);
    }
  }

  /** Sends a notification to every webhook, each on its own, recording every attempt. */
  #deliver(view: AlertView, notification: "alert.raised" | "alert.resolved"): void {
    const { deliveries: _, version: __, ...alert } = view;
    const deliveryId = `${view.alert_id}:${notification}`;
    const body = JSON.stringify({ notification, delivery_id: deliveryId, alert });
    for (const url of this.config.webhookUrls) {
      const webhook = webhookLabel(url);
      this.#track(deliverWebhook({
        url,
        body,
        headers: {
          "user-agent": "orchestrator-alerts/1",
          "x-alert-id": view.alert_id,
          "x-alert-delivery": deliveryId,
        },
        maxAttempts: this.config.webhookMaxAttempts,
        backoff: this.config.webhookBackoff,
        maxBackoff: this.config.webhookMaxBackoff,
        timeout: this.config.webhookTimeout,
        clock: this.#clock,
        random: this.#random,
        fetch: this.#fetch,
        signal: this.#abort.signal,
        record: async (attempt) => {
          const level = attempt.outcome === "delivered" ? "info" : "warn";
          this.#logger.log(level, "alert delivery", {
            alert_id: view.alert_id,
            notification,
            webhook,
            ...attempt,
          });
          await this.#store.append([{
            streamId: ALERT_STREAM_PREFIX + view.alert_id,
            expectedVersion: "any",
            events: [{
              type: "alert.delivery_attempted",
              data: { notification, webhook, ...attempt },
              metadata: { schema_version: 1 },
            }],
          }]);
        },
      }));
    }
  }

  #disarm(id: string): void {
    const handle = this.#timers.get(id);
    if (handle !== undefined) this.#clock.clearTimeout(handle);
    this.#timers.delete(id);
  }
}
