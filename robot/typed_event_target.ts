/**
 * An `EventTarget` whose events carry a typed `detail`, with `on` / `once` helpers.
 *
 * @module
 */

/**
 * Event target for an event map `{type: detail}`. Subclasses dispatch with `emit`.
 *
 * @example Listen once
 * ```ts
 * import { TypedEventTarget } from "./typed_event_target.ts";
 * class Ticker extends TypedEventTarget<{ tick: number }> {
 *   fire() { this.emit("tick", 1); }
 * }
 * const t = new Ticker();
 * const next = t.once("tick");
 * t.fire();
 * console.log(await next); // 1
 * ```
 */
export class TypedEventTarget<M extends object> extends EventTarget {
  /**
   * Listens to an event; returns a function that removes the listener.
   *
   * @param type Event type.
   * @param listener Called with the event's detail.
   */
  on<K extends keyof M & string>(type: K, listener: (detail: M[K]) => void): () => void {
    const wrapped = (e: Event) => listener((e as CustomEvent<M[K]>).detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  /**
   * Waits for the next event of a type whose detail matches `predicate`.
   *
   * @param type Event type.
   * @param predicate Filter on the detail. @default accept any
   * @param signal Rejects with its reason when aborted; the listener is removed.
   * @returns The event's detail.
   */
  once<K extends keyof M & string>(
    type: K,
    predicate: (detail: M[K]) => boolean = () => true,
    signal?: AbortSignal,
  ): Promise<M[K]> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        off();
        reject(signal?.reason);
      };
      const off = this.on(type, (detail) => {
        if (!predicate(detail)) return;
        off();
        signal?.removeEventListener("abort", onAbort);
        resolve(detail);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Dispatches an event with its detail. */
  protected emit<K extends keyof M & string>(type: K, detail: M[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
