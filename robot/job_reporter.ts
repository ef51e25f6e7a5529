/**
 * Streams one job's logs and progress to the orchestrator: logs in batches (at most every
 * `flushIntervalMs`, or as soon as `batchSize` entries wait), progress throttled to the
 * latest value at most every `progressIntervalMs`.
 *
 * @module
 */

import type { JobProgress, LogEntry } from "./job_result.ts";

/** Options of {@linkcode JobReporter}. */
export interface JobReporterOptions {
  /** Sends one `job_log` batch. */
  sendLogs: (entries: LogEntry[]) => void;
  /** Sends one `job_progress`. */
  sendProgress: (progress: JobProgress) => void;
  /** Longest wait before buffered entries are sent, in milliseconds. @default 200 */
  flushIntervalMs?: number;
  /** Entries per batch; a full batch is sent at once. @default 50 */
  batchSize?: number;
  /** Shortest gap between two progress messages, in milliseconds. @default 200 */
  progressIntervalMs?: number;
  /** Longest log message sent, in characters; longer ones are cut. @default 16_384 */
  maxMessageChars?: number;
  /** Milliseconds since the epoch. @default Date.now */
  now?: () => number;
}

/**
 * Batches log entries and throttles progress for one job. Call {@linkcode JobReporter.close}
 * when the job ends: it sends what is buffered and clears the timers.
 *
 * @example Batch two entries
 * ```ts
 * import { JobReporter } from "./job_reporter.ts";
 * const reporter = new JobReporter({ sendLogs: console.log, sendProgress: () => {} });
 * reporter.log({ timestamp: new Date().toISOString(), level: "info", message: "a" });
 * reporter.close(); // sends [a]
 * ```
 */
export class JobReporter {
  #opts: Required<JobReporterOptions>;
  #buffer: LogEntry[] = [];
  #logTimer?: ReturnType<typeof setTimeout>;
  #progressTimer?: ReturnType<typeof setTimeout>;
  #pendingProgress?: JobProgress;
  #lastProgressAt = -Infinity;
  #closed = false;

  /**
   * Creates a reporter; it sends nothing until entries or progress arrive.
   *
   * @param options Senders and limits.
   * @throws {RangeError} When `batchSize` is below 1.
   */
  constructor(options: JobReporterOptions) {
    this.#opts = {
      sendLogs: options.sendLogs,
      sendProgress: options.sendProgress,
      flushIntervalMs: options.flushIntervalMs ?? 200,
      batchSize: options.batchSize ?? 50,
      progressIntervalMs: options.progressIntervalMs ?? 200,
      maxMessageChars: options.maxMessageChars ?? 16_384,
      now: options.now ?? Date.now,
    };
    if (this.#opts.batchSize < 1) {
      throw new RangeError(`batchSize must be ≥ 1, got ${this.#opts.batchSize}`);
    }
  }

  /** Buffers one log entry (ignored after `close`). */
  log(entry: LogEntry): void {
    if (this.#closed) return;
    const max = this.#opts.maxMessageChars;
    this.#buffer.push(
      entry.message.length > max
        ? { ...entry, message: `${entry.message.slice(0, max)}… (truncated)` }
        : entry,
    );
    if (this.#buffer.length >= this.#opts.batchSize) this.flush();
    else this.#logTimer ??= setTimeout(() => this.flush(), this.#opts.flushIntervalMs);
  }

  /** Records progress; sent now, or when the throttle interval has passed. */
  progress(progress: JobProgress): void {
    if (this.#closed) return;
    const wait = this.#lastProgressAt + this.#opts.progressIntervalMs - this.#opts.now();
    if (wait <= 0 && this.#progressTimer === undefined) {
      this.#sendProgress(progress);
      return;
    }
    this.#pendingProgress = progress;
    this.#progressTimer ??= setTimeout(() => {
      this.#progressTimer = undefined;
      const pending = this.#pendingProgress;
      this.#pendingProgress = undefined;
      if (pending) this.#sendProgress(pending);
    }, Math.max(0, wait));
  }

  /** Sends the buffered log entries now, in batches of at most `batchSize`. */
  flush(): void {
    clearTimeout(this.#logTimer);
    this.#logTimer = undefined;
    while (this.#buffer.length > 0) {
      this.#opts.sendLogs(this.#buffer.splice(0, this.#opts.batchSize));
    }
  }

  /** Sends buffered logs, drops pending progress, clears timers. Idempotent. */
  close(): void {
    this.flush();
    clearTimeout(this.#progressTimer);
    this.#progressTimer = undefined;
    this.#pendingProgress = undefined;
    this.#closed = true;
  }

  #sendProgress(progress: JobProgress): void {
    this.#lastProgressAt = this.#opts.now();
    this.#opts.sendProgress(progress);
  }
}
