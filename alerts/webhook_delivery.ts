/**
 * Delivery of one notification to one webhook: a JSON POST, retried with exponential
 * backoff and equal jitter (the delay before attempt n + 1 is uniform in [d/2, d] with
 * d = min(backoff × 2^(n-1), maxBackoff), the job RetryPolicy's formula) while the answer
 * is a network error, a time-out, a 5xx, 408 or 429. Every attempt is reported to `record`
 * (the monitor writes it to the log); the wait for the next attempt is armed on the clock
 * before the attempt is recorded, so whoever sees the record can move a manual clock past it.
 *
 * @module
 */
import type { Clock } from "../engine/clock.ts";
import { retryDelaySeconds } from "../engine/retry_policy.ts";
import type { DeliveryOutcome } from "./alert_state.ts";

/** One attempt, as recorded in `alert.delivery_attempted`. */
export interface WebhookAttempt {
  attempt: number;
  /** RFC 3339. */
  attempted_at: string;
  outcome: DeliveryOutcome;
  /** HTTP status, null when no answer came. */
  status: number | null;
  error: string | null;
  /** RFC 3339 when outcome is `failed`, else null. */
  next_attempt_at: string | null;
}

/** Options of {@linkcode deliverWebhook}. */
export interface DeliverWebhookOptions {
  url: string;
  /** The JSON body. */
  body: string;
  /** Extra request headers (`content-type: application/json` is always sent). */
  headers?: Record<string, string>;
  /** Attempts at most (>= 1). */
  maxAttempts: number;
  /** Seconds before the second attempt. */
  backoff: number;
  /** Longest wait between attempts, seconds. */
  maxBackoff: number;
  /** Seconds one attempt may take. */
  timeout: number;
  clock: Clock;
  /** Jitter source in [0, 1). @default Math.random */
  random?: () => number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Called after each attempt, awaited before the next one. */
  record: (attempt: WebhookAttempt) => Promise<void>;
  /** Stops the delivery (no further attempt or record); the promise then resolves null. */
  signal?: AbortSignal;
}

/** The webhook as logged: the URL without credentials, query or fragment (they may hold secrets). */
export function webhookLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

/** Whether an HTTP status is worth another attempt. */
function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** Resolves after `ms` on `clock`, or at once when `signal` aborts; the timer starts now. */
function wait(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clock.clearTimeout(handle);
      resolve();
    };
    signal?.addEventListener("abort", stop, { once: true });
  });
}

/**
 * Delivers one notification.
 * @returns The final outcome (`delivered`, `gave_up` or `rejected`), or null when stopped
 *   by `signal`. Never throws: a failing `record` is reported to `console.error` and the
 *   delivery goes on.
 */
export async function deliverWebhook(
  options: DeliverWebhookOptions,
): Promise<DeliveryOutcome | null> {
  const { clock, signal } = options;
  const doFetch = options.fetch ?? fetch;
  const random = options.random ?? Math.random;
  const record = async (a: WebhookAttempt) => {
    if (signal?.aborted) return;
    await options.record(a).catch((error) =>
      console.error(`recording a delivery to ${webhookLabel(options.url)} failed:`, error)
    );
  };
  for (let attempt = 1; attempt <= options.maxAttempts; attempt++) {
    if (signal?.aborted) return null;
    const attemptedAt = new Date(clock.now()).toISOString();
    let status: number | null = null;
    let error: string | null = null;
    try {
      const timeout = AbortSignal.timeout(options.timeout * 1000);
      const res = await doFetch(options.url, {
        method: "POST",
        headers: { ...options.headers, "content-type": "application/json" },
        body: options.body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        redirect: "manual",
      });
      status = res.status;
      await res.body?.cancel().catch(() => {});
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
    } catch (e) {
      if (signal?.aborted) return null;
      error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    if (error === null) {
      await record({
        attempt,
        attempted_at: attemptedAt,
        outcome: "delivered",
        status,
        error,
        next_attempt_at: null,
      });
      return "delivered";
    }
    const again = status === null || retryable(status);
    if (!again || attempt === options.maxAttempts) {
      const outcome = again ? "gave_up" : "rejected";
      await record({
        attempt,
        attempted_at: attemptedAt,
        outcome,
        status,
        error,
        next_attempt_at: null,
      });
      return outcome;
    }
    const delay = retryDelaySeconds(
      {
        max_retries: options.maxAttempts,
        initial_delay: options.backoff,
        max_delay: options.maxBackoff,
        backoff_factor: 2,
      },
      attempt,
      random(),
    );
    const next = wait(clock, delay * 1000, signal);
    await record({
      attempt,
      attempted_at: attemptedAt,
      outcome: "failed",
      status,
      error,
      next_attempt_at: new Date(clock.now() + delay * 1000).toISOString(),
    });
    await next;
  }
  return null;
}
