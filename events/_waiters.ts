/**
 * Promises that a subscription settles later (`waitFor`, `caughtUp`), each with an
 * optional AbortSignal.
 *
 * @module
 */

/** One pending wait: its data, and how to settle it. */
export interface Waiter<T> {
  /** What the wait is for, e.g. `{ position: 42 }`. */
  readonly data: T;
  /** Resolves the wait and forgets it. */
  resolve(): void;
  /** Rejects the wait and forgets it. */
  reject(error: unknown): void;
}

/** A set of pending waits. */
export class Waiters<T> {
  #pending = new Set<Waiter<T>>();

  /**
   * Adds a wait.
   * @param data What the wait is for.
   * @param signal Rejects the wait with its reason when aborted.
   * @returns The promise the caller awaits, and the handle to settle it.
   */
  add(data: T, signal?: AbortSignal): { promise: Promise<void>; waiter: Waiter<T> } {
    let waiter!: Waiter<T>;
    const promise = new Promise<void>((resolve, reject) => {
      const onAbort = () => waiter.reject(signal?.reason);
      const forget = () => {
        this.#pending.delete(waiter);
        signal?.removeEventListener("abort", onAbort);
      };
      waiter = {
        data,
        resolve: () => (forget(), resolve()),
        reject: (error) => (forget(), reject(error)),
      };
      if (signal?.aborted) return reject(signal.reason);
      this.#pending.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    return { promise, waiter };
  }

  /** Number of pending waits. */
  get size(): number {
    return this.#pending.size;
  }

  /** Resolves every pending wait whose data matches. */
  resolveWhere(match: (data: T) => boolean): void {
    for (const waiter of [...this.#pending]) if (match(waiter.data)) waiter.resolve();
  }

  /** Rejects every pending wait. */
  rejectAll(error: unknown): void {
    for (const waiter of [...this.#pending]) waiter.reject(error);
  }
}
