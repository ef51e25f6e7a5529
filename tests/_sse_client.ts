/**
 * A Server-Sent Events client over `fetch` for tests: parses the stream as the SSE rules
 * say (fields `event`, `data`, `id`, `retry`; comments start with `:`), and awaits messages.
 *
 * @module
 */

/** One dispatched SSE message. */
export interface SseMessage {
  /** `event` field; `message` when absent. */
  event: string;
  data: string;
  /** Last event id in force when the message was dispatched. */
  id: string;
}

/** An open SSE connection. */
export class SseClient {
  readonly status: number;
  readonly contentType: string | null;
  readonly comments: string[] = [];
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #queue: SseMessage[] = [];
  #lastId = "";
  #abort: AbortController;

  private constructor(res: Response, abort: AbortController) {
    this.status = res.status;
    this.contentType = res.headers.get("content-type");
    this.#abort = abort;
    this.#reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Opens `url` (headers optional: `Last-Event-ID`, `Authorization`). */
  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const abort = new AbortController();
    const res = await fetch(url, { headers, signal: abort.signal });
    return new SseClient(res, abort);
  }

  /** The next message; rejects when the stream ends first or `signal` aborts. */
  async next(signal = AbortSignal.timeout(20_000)): Promise<SseMessage> {
    while (this.#queue.length === 0) {
      signal.throwIfAborted();
      const chunk = await Promise.race([
        this.#reader.read(),
        new Promise<never>((_, reject) => {
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        }),
      ]);
      if (chunk.done) throw new Error("the stream ended");
      this.#buffer += chunk.value;
      this.#parse();
    }
    return this.#queue.shift()!;
  }

  /** Messages until `predicate` holds for one (included). */
  async until(predicate: (m: SseMessage) => boolean): Promise<SseMessage[]> {
    const got: SseMessage[] = [];
    for (;;) {
      const m = await this.next();
      got.push(m);
      if (predicate(m)) return got;
    }
  }

  /**
   * Resolves when the server ends the stream or drops the connection (messages on the way
   * are kept).
   */
  async ended(): Promise<void> {
    for (;;) {
      const chunk = await this.#reader.read().catch(() => ({ done: true as const }));
      if (chunk.done) return;
      this.#buffer += chunk.value;
      this.#parse();
    }
  }

  #parse(): void {
    let end: number;
    while ((end = this.#buffer.indexOf("\n\n")) >= 0) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      let dispatch = false;
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) {
          this.comments.push(line.slice(1).trim());
          continue;
        }
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") {
          data.push(value);
          dispatch = true;
        } else if (field === "id") this.#lastId = value;
      }
      if (dispatch) this.#queue.push({ event, data: data.join("\n"), id: this.#lastId });
    }
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#reader.cancel().catch(() => {});
  }
}
