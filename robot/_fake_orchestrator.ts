/**
 * A minimal orchestrator for robot tests: a real WebSocket server on 127.0.0.1 (port 0)
 * that records what robots send and lets the test answer. Private to `robot/` tests.
 *
 * @module
 */

import { createEnvelope, type Envelope, parseEnvelope } from "./protocol_messages.ts";

/** Options of {@linkcode FakeOrchestrator}. */
export interface FakeOrchestratorOptions {
  /** Token that registers successfully. @default "secret" */
  token?: string;
  /** `config.heartbeat_interval` sent in `robot_registered`, in seconds. @default 30 */
  heartbeatInterval?: number;
  /** `resume_job_ids` to send for a `register` (omitted when it returns undefined). */
  resumeJobIds?: (register: Envelope) => string[] | undefined;
}

/** A recorded message and the socket it came on. */
export interface Received extends Envelope {
  /** The server-side socket the message came on. */
  socket: WebSocket;
}

/** Fake orchestrator; `close()` it at the end of each test. */
export class FakeOrchestrator {
  /** `ws://127.0.0.1:<port>/ws/robot`. */
  readonly url: string;
  /** Sockets in connection order. */
  readonly sockets: WebSocket[] = [];
  /** Every message received, in order. */
  readonly received: Received[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;
  #taken = new Set<Received>();
  #waiters: Array<() => void> = [];
  #opts: FakeOrchestratorOptions;

  /**
   * Starts the server.
   *
   * @param options Token, heartbeat interval and resume ids.
   */
  constructor(options: FakeOrchestratorOptions = {}) {
    this.#opts = options;
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      if (req.headers.get("upgrade") !== "websocket") return new Response("no", { status: 400 });
      const { socket, response } = Deno.upgradeWebSocket(req);
      this.sockets.push(socket);
      socket.onmessage = (ev) => this.#onMessage(socket, ev.data);
      return response;
    });
    this.url = `ws://127.0.0.1:${this.#server.addr.port}/ws/robot`;
  }

  #onMessage(socket: WebSocket, data: unknown): void {
    const env = { ...parseEnvelope(data), socket };
    this.received.push(env);
    if (env.type === "register") {
      const ok = env.payload.auth_token === (this.#opts.token ?? "secret");
      const resume = this.#opts.resumeJobIds?.(env);
      this.send("robot_registered", {
        robot_id: env.payload.robot_id,
        success: ok,
        message: ok ? "welcome" : "invalid token",
        config: { heartbeat_interval: this.#opts.heartbeatInterval ?? 30, heartbeat_timeout: 90 },
        ...(resume ? { resume_job_ids: resume } : {}),
      }, { correlationId: env.id, socket });
      if (!ok) socket.close(4001, "invalid token");
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Sends a message to a robot (default: on the latest socket); returns it. */
  send(
    type: string,
    payload: Record<string, unknown>,
    options: { correlationId?: string; socket?: WebSocket } = {},
  ): Envelope {
    const env = createEnvelope(type, payload, { correlationId: options.correlationId });
    const socket = options.socket ?? this.sockets.at(-1);
    if (!socket || socket.readyState !== WebSocket.OPEN) throw new Error("no open robot socket");
    socket.send(JSON.stringify(env));
    return env;
  }

  /**
   * The first received message of `type` (matching `predicate`) not returned before;
   * waits for it (at most `timeoutMs`).
   */
  async next(
    type: string,
    predicate: (env: Received) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find((e) =>
        !this.#taken.has(e) && e.type === type && predicate(e)
      );
      if (found) {
        this.#taken.add(found);
        return found;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `no ${type} message within ${timeoutMs} ms; got ${this.received.map((e) => e.type)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Closes every socket and the server. */
  async close(): Promise<void> {
    await Promise.all(this.sockets.map((s) => closed(s)));
    await this.#server.shutdown();
  }
}

function closed(socket: WebSocket): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    socket.addEventListener("close", () => resolve(), { once: true });
    if (socket.readyState !== WebSocket.CLOSING) socket.close(1001, "test over");
  });
}
