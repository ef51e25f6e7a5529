/**
 * Alert thresholds and webhook settings, read from the environment (`ALERT_*`), checked at
 * start-up so that a bad value stops the orchestrator with a message naming the variable.
 *
 * @module
 */

/** The kinds of alert (issue 6, item 10; the reference lists alerts as future work). */
export type AlertKind = "robot_disconnected" | "job_timeout" | "high_error_rate" | "queue_backlog";

/** Every kind, in a fixed order. */
export const ALERT_KINDS: readonly AlertKind[] = [
  "robot_disconnected",
  "job_timeout",
  "high_error_rate",
  "queue_backlog",
];

/** Alert configuration. Times in seconds. */
export interface AlertConfig {
  /** `ALERTS`: the kinds evaluated (`none` for no alert at all). @default every kind */
  kinds: readonly AlertKind[];
  /**
   * `ALERT_ROBOT_OFFLINE_AFTER`: seconds a robot must stay disconnected before
   * `robot_disconnected` is raised (a robot back sooner raises nothing); 0 = at once.
   * @default 60
   */
  robotOfflineAfter: number;
  /**
   * `ALERT_ERROR_RATE_THRESHOLD`: share of failed jobs (failed or timed out, of those that
   * ended in the window) at or above which `high_error_rate` is raised; in (0, 1].
   * @default 0.5
   */
  errorRateThreshold: number;
  /** `ALERT_ERROR_RATE_WINDOW`: seconds of the sliding window. @default 300 */
  errorRateWindow: number;
  /**
   * `ALERT_ERROR_RATE_MIN_JOBS`: fewest jobs ended in the window for the rate to count
   * (three failures of four jobs at night are not an incident). @default 10
   */
  errorRateMinJobs: number;
  /** `ALERT_QUEUE_DEPTH`: queued jobs above which the queue is backlogged. @default 100 */
  queueDepth: number;
  /**
   * `ALERT_QUEUE_DURATION`: seconds the depth must stay above `queueDepth` before
   * `queue_backlog` is raised; 0 = at once. @default 300
   */
  queueDuration: number;
  /** `ALERT_WEBHOOK_URLS`: http(s) URLs that get each alert as a JSON POST. @default none */
  webhookUrls: readonly string[];
  /** `ALERT_WEBHOOK_MAX_ATTEMPTS`: attempts per notification and webhook. @default 8 */
  webhookMaxAttempts: number;
  /** `ALERT_WEBHOOK_BACKOFF`: seconds before the second attempt (then doubling). @default 1 */
  webhookBackoff: number;
  /** `ALERT_WEBHOOK_MAX_BACKOFF`: longest wait between attempts, in seconds. @default 300 */
  webhookMaxBackoff: number;
  /** `ALERT_WEBHOOK_TIMEOUT`: seconds one attempt may take. @default 10 */
  webhookTimeout: number;
}

/** The defaults (see each field). */
export const DEFAULT_ALERT_CONFIG: AlertConfig = {
  kinds: ALERT_KINDS,
  robotOfflineAfter: 60,
  errorRateThreshold: 0.5,
  errorRateWindow: 300,
  errorRateMinJobs: 10,
  queueDepth: 100,
  queueDuration: 300,
  webhookUrls: [],
  webhookMaxAttempts: 8,
  webhookBackoff: 1,
  webhookMaxBackoff: 300,
  webhookTimeout: 10,
};

/**
 * Reads the `ALERT_*` variables (and `ALERTS`); unset or empty ones take the defaults.
 *
 * @param env Reads one variable.
 * @returns The configuration.
 * @throws {RangeError} naming the variable, the rule and the value seen, e.g.
 *   `ALERT_ERROR_RATE_THRESHOLD must be a number greater than 0 and at most 1, got "1.5"`.
 */
export function parseAlertConfig(env: (name: string) => string | undefined): AlertConfig {
  const d = DEFAULT_ALERT_CONFIG;
  const number = (
    name: string,
    fallback: number,
    rule: { min: number; minExclusive?: boolean; max?: number; integer?: boolean },
  ): number => {
    const raw = env(name)?.trim();
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    const ok = Number.isFinite(n) && (rule.minExclusive ? n > rule.min : n >= rule.min) &&
      (rule.max === undefined || n <= rule.max) && (!rule.integer || Number.isInteger(n));
    if (!ok) {
      const what = rule.integer ? "an integer" : "a number";
      const low = rule.minExclusive ? `greater than ${rule.min}` : `>= ${rule.min}`;
      const high = rule.max === undefined ? "" : ` and at most ${rule.max}`;
      throw new RangeError(`${name} must be ${what} ${low}${high}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };

  const kindsRaw = env("ALERTS")?.trim();
  let kinds: readonly AlertKind[] = d.kinds;
  if (kindsRaw === "none") kinds = [];
  else if (kindsRaw) {
    const list = kindsRaw.split(",").map((s) => s.trim()).filter(Boolean);
    const unknown = list.filter((k) => !ALERT_KINDS.includes(k as AlertKind));
    if (unknown.length) {
      throw new RangeError(
        `ALERTS must be "none" or a comma-separated list of ${ALERT_KINDS.join(", ")}, got ${
          JSON.stringify(unknown[0])
        }`,
      );
    }
    kinds = ALERT_KINDS.filter((k) => list.includes(k));
  }

  const urls = (env("ALERT_WEBHOOK_URLS") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const url of urls) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      // reported below
    }
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
      throw new RangeError(
        `ALERT_WEBHOOK_URLS must be a comma-separated list of http or https URLs, got ${
          JSON.stringify(url)
        }`,
      );
    }
  }

  const config: AlertConfig = {
    kinds,
    robotOfflineAfter: number("ALERT_ROBOT_OFFLINE_AFTER", d.robotOfflineAfter, { min: 0 }),
    errorRateThreshold: number("ALERT_ERROR_RATE_THRESHOLD", d.errorRateThreshold, {
      min: 0,
      minExclusive: true,
      max: 1,
    }),
    errorRateWindow: number("ALERT_ERROR_RATE_WINDOW", d.errorRateWindow, {
      min: 0,
      minExclusive: true,
    }),
    errorRateMinJobs: number("ALERT_ERROR_RATE_MIN_JOBS", d.errorRateMinJobs, {
      min: 1,
      integer: true,
    }),
    queueDepth: number("ALERT_QUEUE_DEPTH", d.queueDepth, { min: 0, integer: true }),
    queueDuration: number("ALERT_QUEUE_DURATION", d.queueDuration, { min: 0 }),
    webhookUrls: urls,
    webhookMaxAttempts: number("ALERT_WEBHOOK_MAX_ATTEMPTS", d.webhookMaxAttempts, {
      min: 1,
      max: 100,
      integer: true,
    }),
    webhookBackoff: number("ALERT_WEBHOOK_BACKOFF", d.webhookBackoff, {
      min: 0,
      minExclusive: true,
    }),
    webhookMaxBackoff: number("ALERT_WEBHOOK_MAX_BACKOFF", d.webhookMaxBackoff, {
      min: 0,
      minExclusive: true,
    }),
    webhookTimeout: number("ALERT_WEBHOOK_TIMEOUT", d.webhookTimeout, {
      min: 0,
      minExclusive: true,
    }),
  };
  if (config.webhookMaxBackoff < config.webhookBackoff) {
    throw new RangeError(
      `ALERT_WEBHOOK_MAX_BACKOFF must be >= ALERT_WEBHOOK_BACKOFF (${config.webhookBackoff}), got ${
        JSON.stringify(env("ALERT_WEBHOOK_MAX_BACKOFF"))
      }`,
    );
  }
  return config;
}
