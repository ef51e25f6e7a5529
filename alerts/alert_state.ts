/**
 * Alerts as the log holds them: one stream per alert, `alert-<alert_id>`, folded into the
 * view the API shows.
 *
 * Events (data fields; times RFC 3339 UTC):
 * - `alert.raised` `{alert_id, org_id, kind, severity, subject, message, raised_at, trigger,
 *   evidence}`: `org_id` is the org the alert belongs to (the robot's, the job's, or the org
 *   whose error rate or queue met the threshold; absent in alerts raised before alerts had
 *   orgs: org `default`), which makes the whole `alert-<id>` stream that org's
 *   (`engine/org_index.ts`: a stream belongs to the org of its first event); `trigger` names
 *   the event that started the condition (`{event_id, stream_id, stream_version, type}`),
 *   `evidence` the figures that met the threshold. Always version 1 of its stream, appended
 *   with expected version 0.
 * - `alert.resolved` `{resolved_at, reason, evidence}`: the condition ended.
 * - `alert.acknowledged` `{acknowledged_at, note}`: an operator saw it.
 * - `alert.delivery_attempted` `{notification, webhook, attempt, attempted_at, outcome,
 *   status, error, next_attempt_at}`: one POST to one webhook; `notification` is
 *   `alert.raised` or `alert.resolved`; `outcome` `delivered` (2xx), `failed` (another
 *   attempt follows at `next_attempt_at`), `gave_up` (no attempt left) or `rejected` (a 4xx
 *   other than 408 and 429: not retried).
 *
 * @module
 */
import type { RecordedEvent } from "../events/mod.ts";
import { DEFAULT_ORG } from "../engine/org_index.ts";
import type { AlertKind } from "./alert_config.ts";

/** Prefix of alert streams. */
export const ALERT_STREAM_PREFIX = "alert-";

/** Status of an alert: raised (open), acknowledged (open, seen), resolved (closed). */
export type AlertStatus = "raised" | "acknowledged" | "resolved";

/** Every status. */
export const ALERT_STATUSES: readonly AlertStatus[] = ["raised", "acknowledged", "resolved"];

/** How bad: `critical` for a high error rate, else `warning`. */
export type AlertSeverity = "warning" | "critical";

/** Outcome of one delivery attempt. */
export type DeliveryOutcome = "delivered" | "failed" | "gave_up" | "rejected";

/** Where one notification stands with one webhook. */
export interface DeliveryView {
  /** `alert.raised` or `alert.resolved`. */
  notification: string;
  /** The webhook (URL without credentials, query or fragment). */
  webhook: string;
  /** Attempts made so far. */
  attempts: number;
  /** The last attempt's outcome. */
  outcome: DeliveryOutcome;
  /** HTTP status of the last attempt, null when no answer came. */
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: string;
  /** When the next attempt is due (outcome `failed`), else null. */
  next_attempt_at: string | null;
}

/** An alert as the API shows it. */
export interface AlertView {
  alert_id: string;
  /** The org it belongs to (`default` for alerts raised before alerts had orgs). */
  org_id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  status: AlertStatus;
  /** What it is about: `{robot_id}`, `{job_id}` or `{}` for the whole org. */
  subject: Record<string, string>;
  message: string;
  /** The event that started the condition. */
  trigger: Record<string, unknown>;
  /** The figures that met the threshold when it was raised. */
  evidence: Record<string, unknown>;
  raised_at: string;
  acknowledged_at: string | null;
  acknowledgement_note: string | null;
  resolved_at: string | null;
  /** Why and on what evidence it was resolved, else null. */
  resolution: { reason: string; evidence: Record<string, unknown> } | null;
  deliveries: DeliveryView[];
  /** Version of the alert's stream. */
  version: number;
}

/**
 * Folds one event of an alert stream into its view (pure).
 * @returns The new view; undefined until `alert.raised` is folded; the same view for event
 *   types it does not know (a later version's).
 */
export function applyAlertEvent(
  view: AlertView | undefined,
  event: RecordedEvent,
): AlertView | undefined {
  const d = event.data;
  if (event.type === "alert.raised") {
    return {
      alert_id: String(d.alert_id),
      org_id: typeof d.org_id === "string" ? d.org_id : DEFAULT_ORG,
      kind: d.kind as AlertKind,
      severity: d.severity as AlertSeverity,
      status: "raised",
      subject: (d.subject ?? {}) as Record<string, string>,
      message: String(d.message ?? ""),
      trigger: (d.trigger ?? {}) as Record<string, unknown>,
      evidence: (d.evidence ?? {}) as Record<string, unknown>,
      raised_at: String(d.raised_at),
      acknowledged_at: null,
      acknowledgement_note: null,
      resolved_at: null,
      resolution: null,
      deliveries: [],
      version: event.streamVersion,
    };
  }
  if (!view) return view;
  const next: AlertView = { ...view, version: event.streamVersion };
  switch (event.type) {
    case "alert.resolved":
      next.status = "resolved";
      next.resolved_at = String(d.resolved_at);
      next.resolution = {
        reason: String(d.reason ?? ""),
        evidence: (d.evidence ?? {}) as Record<string, unknown>,
      };
      return next;
    case "alert.acknowledged":
      if (next.status === "raised") next.status = "acknowledged";
      next.acknowledged_at = String(d.acknowledged_at);
      next.acknowledgement_note = typeof d.note === "string" ? d.note : null;
      return next;
    case "alert.delivery_attempted": {
      const delivery: DeliveryView = {
        notification: String(d.notification),
        webhook: String(d.webhook),
        attempts: Number(d.attempt),
        outcome: d.outcome as DeliveryOutcome,
        last_status: typeof d.status === "number" ? d.status : null,
        last_error: typeof d.error === "string" ? d.error : null,
        last_attempt_at: String(d.attempted_at),
        next_attempt_at: typeof d.next_attempt_at === "string" ? d.next_attempt_at : null,
      };
      const same = (x: DeliveryView) =>
        x.notification === delivery.notification && x.webhook === delivery.webhook;
      next.deliveries = view.deliveries.some(same)
        ? view.deliveries.map((x) => same(x) ? delivery : x)
        : [...view.deliveries, delivery];
      return next;
    }
    default:
      return next;
  }
}
