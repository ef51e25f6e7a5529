// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * A robot written by hand over a raw WebSocket, to drive the protocol message by message
 * (and to vanish without a goodbye).
 *
 * @module
 */

/** A received protocol message. */
export interface Msg {
  type: string;
  id: string;
  payload: Record<string, any>;
  correlation_id?: string;
}

/** Minimal robot over a raw WebSocket. */
export class RawRobot {
  readonly robotId: string;
  #ws: WebSocket;
  #inbox: Msg[] = [];
  #waiters: { type: string; resolve: (m: Msg) => void }[] = [];
  #opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #token: string;

  constructor(url: string, token: string, robotId: string) {
    this.robotId = robotId;
    this.#token = token;
    this.#ws = new WebSocket(url);
    this.#opened = new Promise((resolve, reject) => {
      this.#ws.onopen = () => resolve();
      this.#ws.onerror = () => reject(new Error("websocket error"));
    });
    this.closed = new Promise((resolve) => {
      this.#ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
    });
    this.#ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data)) as Msg;
      const i = this.#waiters.findIndex((w) => w.type === msg.type);
      if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(msg);
      else this.#inbox.push(msg);
    };
  }

  /** Sends a raw text frame once open. */
  async sendRaw(text: string): Promise<void> {
    await this.#opened;
    this.#ws.send(text);
  }

  /** Sends a protocol message; returns its id. */
  send(type: string, payload: Record<string, unknown>, correlationId?: string): string {
    const id = crypto.randomUUID();
    const frame: Record<string, unknown> = {
      type,
      id,
      timestamp: new Date().toISOString(),
      payload,
    };
    if (correlationId) frame.correlation_id = correlationId;
    void this.sendRaw(JSON.stringify(frame));
    return id;
  }

  /** The next message of `type` (earlier ones of other types stay queued). */
  next(type: string, signal: AbortSignal = AbortSignal.timeout(15_000)): Promise<Msg> {
    const i = this.#inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = { type, resolve };
      this.#waiters.push(waiter);
      signal.addEventListener("abort", () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${type} message arrived`));
      });
    });
  }

  /** Registers and waits for `robot_registered`. */
  async register(extra: Record<string, unknown> = {}): Promise<Msg> {
    this.send("register", {
      robot_id: this.robotId,
      name: this.robotId,
      capabilities: [],
      tags: [],
      max_concurrent_jobs: 1,
      auth_token: this.#token,
      ...extra,
    });
    return await this.next("robot_registered");
  }

  /** Drops the connection without a `disconnect` message. */
  kill(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      this.#ws.close(4000, "vanished");
    }
  }
}
