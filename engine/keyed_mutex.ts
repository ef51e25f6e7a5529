/**
 * Mutual exclusion per key, for commands that touch several streams at once.
 *
 * A run enqueues itself behind the current holders of all its keys in one synchronous step,
 * so two runs can never wait on each other in a cycle (no deadlock, whatever the key order).
 *
 * @module
 */

/** Runs async functions exclusively per key. */
export class KeyedMutex {
  #tails = new Map<string, Promise<void>>();

  /** Runs `fn` once no earlier run holds any of `keys`; returns its result. */
  async run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const waits: Promise<void>[] = [];
    for (const key of keys) {
      const tail = this.#tails.get(key);
      if (tail) waits.push(tail);
      this.#tails.set(key, mine);
    }
    try {
      if (waits.length) await Promise.all(waits);
      return await fn();
    } finally {
      release();
      for (const key of keys) if (this.#tails.get(key) === mine) this.#tails.delete(key);
    }
  }
}
