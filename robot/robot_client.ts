/**
 * The robot: connects to the orchestrator's WebSocket, registers, heartbeats, takes jobs,
 * runs them through the workflow engine and reports logs, progress and results, following
 * `shared/reference/robot-protocol.md` (version 1).
 *
 * @module
 */

import { reconnectDelay } from "./backoff.ts";
import { JobSlots } from "./job_slots.ts";
import {
  createEnvelope,
  type Envelope,
  type InvalidMessageError,
  parseEnvelope,
  type RegisterPayload,
  type RobotRegisteredPayload,
  type RobotStatus,
} from "./protocol_messages.ts";
import {
  type ClosedInfo,
  consoleWarnLogger,
  type RegisteredInfo,
  RobotClientClosedError,
  type RobotClientEventMap,
  type RobotClientOptions,
  type RobotLogger,
  RobotRegistrationError,
} from "./robot_client_options.ts";
import { TypedEventTarget } from "./typed_event_target.ts";
import { executeWorkflow } from "./workflow_engine.ts";

/** Connection state of a {@linkcode RobotClient}. */
export type RobotClientState = "idle" | "connecting" | "registering" | "online" | "closed";
const OUTBOX_LIMIT = 10_000;

/**
 * A robot connected to an orchestrator. Create it, listen to its events
 * ({@linkcode RobotClientEventMap}) with `on`/`once`, call {@linkcode RobotClient.start};
 * stop it with {@linkcode RobotClient.shutdown} (graceful: running jobs finish first) or
 * {@linkcode RobotClient.close} (running jobs are cancelled).
 *
 * Authentication is `payload.auth_token` in `register` (a browser-style WebSocket cannot
 * set `Authorization`). When the connection drops it reconnects with exponential backoff
 * and jitter and re-registers with the ids of the jobs it still runs; logs and results
 * produced meanwhile are kept and sent after re-registration.
 *
 * @example Run a robot
 * ```ts ignore
 * import { RobotClient } from "./robot_client.ts";
 * const robot = new RobotClient({ url: "ws://localhost:8765/ws/robot", token: "t", name: "r1" });
 * robot.on("job_finished", ({ jobId, result }) => console.log(jobId, result.status));
 * await robot.start();
 * ```
 */
/** Most unacknowledged results kept for resending (oldest dropped first). */
const UNACKED_LIMIT = 1000;

export class RobotClient extends TypedEventTarget<RobotClientEventMap> {
  /** The robot's id (`robotId` option, default its name). */
  readonly robotId: string;
  /** Resolves at the first successful registration; rejects if refused or closed before. */
  readonly registered: Promise<RegisteredInfo>;
  /** Resolves when the client has stopped for good. */
  readonly closed: Promise<ClosedInfo>;

  #o: RobotClientOptions;
  #log: RobotLogger;
  #jobs: JobSlots;
  #state: RobotClientState = "idle";
  #ws?: WebSocket;
  #outbox: Envelope<unknown>[] = [];
  /** `job_result`s not yet acknowledged by the orchestrator, by job id. */
  #unacked = new Map<string, Envelope<unknown>>();
  #paused = false;
  #stopping?: { graceful: boolean; reason: string };
  #attempt = 0;
  /** Endpoints tried in turn (`urls`, else `[url]`) and the one in use. */
  #urls: string[];
  #urlIndex = 0;
  #everRegistered = false;
  #registeredSettled = false;
  #timers: Partial<
    Record<"heartbeat" | "reconnect" | "register" | "force", ReturnType<typeof setTimeout>>
  > = {};
  #settle!: { resolve: (i: RegisteredInfo) => void; reject: (e: Error) => void };
  #resolveClosed!: (info: ClosedInfo) => void;

  /**
   * Creates a robot; nothing happens until {@linkcode RobotClient.start}.
   *
   * @param options See {@linkcode RobotClientOptions}.
   * @throws {TypeError} When `url`, `token` or `name` is empty.
   * @throws {RangeError} When `maxConcurrentJobs` is not an integer ≥ 1.
   */
  constructor(options: RobotClientOptions) {
    super();
    for (const key of ["url", "token", "name"] as const) {
      if (typeof options[key] !== "string" || options[key] === "") {
        throw new TypeError(`RobotClient needs a non-empty ${key}, got ${options[key]}`);
      }
    }
    const max = options.maxConcurrentJobs ?? 1;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxConcurrentJobs must be an integer ≥ 1, got ${max}`);
    }
    this.#o = options;
    const urls = (options.urls ?? []).filter((u) => u !== "");
    this.#urls = urls.length ? urls : [options.url];
    this.#log = options.logger ?? consoleWarnLogger;
    this.robotId = options.robotId || options.name;
    this.#jobs = new JobSlots({
      maxConcurrentJobs: max,
      executor: options.executor ?? executeWorkflow,
      logger: this.#log,
      send: (type, payload, opts) => this.#send(type, payload, opts),
      reporting: {
        flushIntervalMs: options.logFlushIntervalMs,
        batchSize: options.logBatchSize,
        progressIntervalMs: options.progressIntervalMs,
        now: options.now,
      },
      onStarted: (info) => this.emit("job_started", info),
      onRejected: (info) => this.emit("job_rejected", info),
      onFinished: (info) => {
        this.emit("job_finished", info);
        this.#maybeFinish();
      },
    });
    this.registered = new Promise((resolve, reject) => (this.#settle = { resolve, reject }));
    this.registered.catch(() => {}); // callers observe it through start() or the property
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  #heldJobIds(): string[] {
    const ids = new Set([...this.#jobs.ids, ...this.#unacked.keys()]);
    for (const env of this.#outbox) {
      const jobId = (env.payload as { job_id?: unknown }).job_id;
      if (typeof jobId === "string") ids.add(jobId);
    }
    return [...ids];
  }

  /** The orchestrator endpoint the robot connects (or is connected) to. */
  get url(): string {
    return this.#urls[this.#urlIndex % this.#urls.length];
  }

  /** Connection state: `idle`, `connecting`, `registering`, `online` or `closed`. */
  get state(): RobotClientState {
    return this.#state;
  }

  /** `paused`, `busy` (every slot taken) or `online`. */
  get status(): RobotStatus {
    return this.#paused ? "paused" : this.#jobs.full ? "busy" : "online";
  }

  /** Ids of the jobs running now. */
  get activeJobIds(): string[] {
    return this.#jobs.ids;
  }

  /**
   * Connects and registers; keeps reconnecting until registered or closed.
   *
   * @returns {@linkcode RobotClient.registered}.
   * @throws {TypeError} When called twice.
   */
  start(): Promise<RegisteredInfo> {
    if (this.#state !== "idle") throw new TypeError(`start() called in state ${this.#state}`);
    this.#connect();
    return this.registered;
  }

  /**
   * Stops the robot: no new jobs are taken; with `graceful` (default) running jobs finish,
   * otherwise they are cancelled (and reported `cancelled`). Then `disconnect` is sent and
   * the socket closed. A forced stop gives up waiting for jobs after `forceCloseMs`.
   *
   * @param options `graceful` (default true) and the `reason` sent in `disconnect`.
   * @returns {@linkcode RobotClient.closed}.
   */
  shutdown(options: { graceful?: boolean; reason?: string } = {}): Promise<ClosedInfo> {
    const graceful = options.graceful ?? true;
    const reason = options.reason ?? "shutdown";
    if (this.#state === "closed") return this.closed;
    if (!this.#stopping || (this.#stopping.graceful && !graceful)) {
      this.#stopping = { graceful, reason };
      if (!graceful) {
        this.#jobs.abortAll(`robot shutting down: ${reason}`);
        this.#timers.force = setTimeout(
          () => void this.#finalize(reason),
          this.#o.forceCloseMs ?? 5000,
        );
      }
    }
    if (this.#state === "idle") void this.#finalize(reason);
    this.#maybeFinish();
    return this.closed;
  }

  /** Stops now: `shutdown({graceful: false, reason})`. */
  close(reason = "closed by robot"): Promise<ClosedInfo> {
    return this.shutdown({ graceful: false, reason });
  }

  #send(
    type: string,
    payload: unknown,
    opts: { correlationId?: string; durable?: boolean; direct?: boolean } = {},
  ): void {
    const env = createEnvelope(type, payload, {
      id: this.#o.newId?.(),
      now: this.#o.now?.(),
      correlationId: opts.correlationId,
    });
    if (type === "job_result") {
      // Held until the orchestrator acknowledges it (`job_result_ack`): a result written to
      // a socket is not yet recorded, and the orchestrator may die before it is.
      const jobId = String((payload as { job_id?: unknown }).job_id);
      this.#unacked.delete(jobId);
      this.#unacked.set(jobId, env);
      if (this.#unacked.size > UNACKED_LIMIT) {
        this.#unacked.delete(this.#unacked.keys().next().value!);
      }
    }
    const ws = this.#ws;
    if (ws?.readyState === WebSocket.OPEN && (this.#state === "online" || opts.direct)) {
      ws.send(JSON.stringify(env));
    } else if (opts.durable) {
      if (this.#outbox.length >= OUTBOX_LIMIT) {
        this.#log.warn(`Outbox full; dropped an undelivered ${this.#outbox.shift()?.type}`);
      }
      this.#outbox.push(env);
    }
  }

  #connect(): void {
    this.#state = "connecting";
    let ws: WebSocket;
    try {
      ws = new (this.#o.WebSocket ?? WebSocket)(this.url);
    } catch (e) {
      this.#log.error(`Cannot open ${this.url}: ${(e as Error).message}`);
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      this.#state = "registering";
      const payload: RegisterPayload = {
        robot_id: this.robotId,
        name: this.#o.name,
        capabilities: this.#o.capabilities ?? [],
        tags: this.#o.tags ?? [],
        max_concurrent_jobs: this.#o.maxConcurrentJobs ?? 1,
        version: this.#o.version ?? "0.1.0",
        // Jobs still running and jobs whose result waits in the outbox: the robot holds
        // both, so the orchestrator must not requeue them (and run them twice).
        active_job_ids: this.#heldJobIds(),
        auth_token: this.#o.token,
        ...(this.#o.environment ? { environment: this.#o.environment } : {}),
      };
      this.#send("register", payload, { direct: true });
      this.#timers.register = setTimeout(() => {
        this.#log.warn("No robot_registered in time; reconnecting");
        ws.close(4000, "registration timeout");
      }, this.#o.registerTimeoutMs ?? 10_000);
    };
    ws.onmessage = (ev) => {
      if (ws === this.#ws) this.#onMessage(ev.data);
    };
    ws.onerror = (ev) => {
      if (ws === this.#ws) this.#log.debug(`WebSocket error: ${(ev as ErrorEvent).message}`);
    };
    ws.onclose = (ev) => this.#onClose(ws, ev.code, ev.reason);
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    this.#clearConnectionTimers();
    if (this.#state === "closed") return;
    this.#state = "connecting";
    this.emit("disconnected", { code, reason });
    if (code === 4001) return this.#registrationFailed(reason || "unauthorized (close code 4001)");
    this.#log.warn(`Disconnected (code ${code}${reason ? `, ${reason}` : ""})`);
    if (this.#stopping && !this.#mustDeliver()) void this.#finalize(this.#stopping.reason);
    else this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#state === "closed") return;
    this.#state = "connecting";
    const random = (this.#o.random ?? Math.random)();
    const delayMs = reconnectDelay(this.#attempt++, this.#o.reconnect, random);
    // With several orchestrator nodes, each reconnect tries the next one: a node that died
    // (or refuses) is left at once for a live one, which takes the robot and its jobs over.
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    this.emit("reconnecting", { attempt: this.#attempt, delayMs });
    this.#timers.reconnect = setTimeout(() => {
      this.#timers.reconnect = undefined;
      if (this.#state !== "closed") this.#connect();
    }, delayMs);
  }

  #clearConnectionTimers(): void {
    clearInterval(this.#timers.heartbeat);
    clearTimeout(this.#timers.register);
    this.#timers.heartbeat = this.#timers.register = undefined;
  }

  #onMessage(data: unknown): void {
    let env: Envelope;
    try {
      env = parseEnvelope(data);
    } catch (e) {
      const err = e as InvalidMessageError;
      this.#log.warn(`Invalid message from orchestrator: ${err.message}`);
      this.#send("error", { code: "invalid_message", message: err.message }, {
        correlationId: err.messageId,
        direct: true,
      });
      return;
    }
    this.emit("message", env);
    const p = env.payload;
    switch (env.type) {
      case "robot_registered":
        return this.#onRegistered(p as unknown as RobotRegisteredPayload);
      case "heartbeat_ack":
        return;
      case "job_result_ack":
        this.#unacked.delete(String(p.job_id));
        return;
      case "job_assignment":
        return this.#jobs.assign(
          env,
          this.#stopping ? "robot is shutting down" : this.#paused ? "robot is paused" : undefined,
        );
      case "cancel_job":
        return this.#jobs.cancel(env);
      case "pause":
      case "resume":
        this.#paused = env.type === "pause";
        this.#send("status_update", {
          robot_id: this.robotId,
          status: this.status,
          ...(typeof p.reason === "string" ? { reason: p.reason } : {}),
        });
        this.#log.info(`Robot ${this.#paused ? "paused" : "resumed"} by the orchestrator`);
        return this.emit(this.#paused ? "paused" : "resumed", {});
      case "draining":
        // The orchestrator is stopping (an extension of protocol version 1): running jobs
        // go on; the connection will close and the robot reconnects with backoff.
        this.#log.info(
          `Orchestrator draining (${String(p.reason ?? "shutting down")}); ` +
            `running jobs continue until ${String(p.deadline ?? "its drain timeout")}`,
        );
        return;
      case "shutdown": {
        const graceful = p.graceful !== false;
        this.emit("shutdown_requested", { graceful });
        void this.shutdown({ graceful, reason: "shutdown requested by orchestrator" });
        return;
      }
      case "error": {
        const code = String(p.code ?? "unknown");
        const message = String(p.message ?? "");
        this.#log.warn(`Orchestrator error ${code}: ${message}`, {
          correlation_id: env.correlation_id,
        });
        return this.emit("server_error", {
          code,
          message,
          details: p.details,
          correlationId: env.correlation_id,
        });
      }
      default:
        this.#log.debug(`Ignoring message of unknown type ${env.type}`);
    }
  }

  #onRegistered(p: RobotRegisteredPayload): void {
    if (this.#state !== "registering") return;
    clearTimeout(this.#timers.register);
    if (p.success !== true) return this.#registrationFailed(String(p.message ?? "refused"));
    const configured = Number(p.config?.heartbeat_interval);
    const interval = configured > 0
      ? Math.max(0.01, configured)
      : (this.#o.defaultHeartbeatIntervalSeconds ?? 30);
    const info: RegisteredInfo = {
      robotId: this.robotId,
      message: String(p.message ?? ""),
      heartbeatIntervalSeconds: interval,
      reconnected: this.#everRegistered,
    };
    if (typeof p.config?.heartbeat_timeout === "number") {
      info.heartbeatTimeoutSeconds = p.config.heartbeat_timeout;
    }
    if (Array.isArray(p.resume_job_ids)) {
      info.resumeJobIds = p.resume_job_ids.map(String);
      const dropped = this.#jobs.abandonAllExcept(new Set(info.resumeJobIds));
      for (const jobId of [...this.#unacked.keys()]) {
        if (!info.resumeJobIds.includes(jobId)) {
          this.#unacked.delete(jobId);
          dropped.add(jobId);
        }
      }
      this.#outbox = this.#outbox.filter((env) =>
        !dropped.has(String((env.payload as { job_id?: unknown }).job_id))
      );
    }
    this.#state = "online";
    this.#attempt = 0;
    this.#everRegistered = true;
    const flushed = new Set<string>();
    for (const env of this.#outbox.splice(0)) {
      if (env.type === "job_result") {
        flushed.add(String((env.payload as { job_id?: unknown }).job_id));
      }
      this.#ws!.send(JSON.stringify(env));
    }
    // Results sent before the connection dropped but never acknowledged: send them again
    // (the orchestrator acknowledges a result it already recorded without recording twice).
    for (const [jobId, env] of this.#unacked) {
      if (!flushed.has(jobId)) this.#ws!.send(JSON.stringify(env));
    }
    this.#heartbeat();
    this.#timers.heartbeat = setInterval(() => this.#heartbeat(), interval * 1000);
    this.#log.info(`Registered as ${this.robotId} (heartbeat every ${interval} s)`);
    if (!this.#registeredSettled) {
      this.#registeredSettled = true;
      this.#settle.resolve(info);
    }
    this.emit("registered", info);
    this.#maybeFinish();
  }

  #registrationFailed(message: string): void {
    this.#log.error(`Registration refused: ${message}`);
    this.emit("registration_failed", { message });
    if (!this.#registeredSettled) {
      this.#registeredSettled = true;
      this.#settle.reject(new RobotRegistrationError(message));
    }
    this.#jobs.abortAll("registration refused");
    void this.#finalize(`registration refused: ${message}`);
  }

  #heartbeat(): void {
    let metrics = {};
    try {
      metrics = this.#o.metrics?.() ?? {};
    } catch (e) {
      this.#log.debug(`metrics() failed: ${(e as Error).message}`);
    }
    this.#send("heartbeat", {
      robot_id: this.robotId,
      status: this.status,
      current_jobs: this.#jobs.size,
      // Every job the robot holds, as in `register`: a finished job whose result is not
      // acknowledged yet is still this robot's (the orchestrator requeues a job that two
      // heartbeats omit).
      active_job_ids: this.#heldJobIds(),
      ...metrics,
    });
  }

  /** Whether a graceful stop must wait for a connection to deliver kept messages. */
  #mustDeliver(): boolean {
    return this.#stopping?.graceful === true && this.#outbox.length > 0 && this.#everRegistered;
  }

  #maybeFinish(): void {
    if (!this.#stopping || this.#jobs.size > 0 || this.#state === "closed") return;
    if (this.#state === "online" || !this.#mustDeliver()) {
      void this.#finalize(this.#stopping.reason);
    }
  }

  async #finalize(reason: string): Promise<void> {
    if (this.#state === "closed") return;
    const wasOnline = this.#state === "online";
    this.#state = "closed";
    clearTimeout(this.#timers.reconnect);
    clearTimeout(this.#timers.force);
    this.#clearConnectionTimers();
    const ws = this.#ws;
    if (ws && wasOnline && ws.readyState === WebSocket.OPEN) {
      for (const env of this.#outbox.splice(0)) ws.send(JSON.stringify(env));
      const bye = createEnvelope("disconnect", { robot_id: this.robotId, reason }, {
        id: this.#o.newId?.(),
        now: this.#o.now?.(),
      });
      ws.send(JSON.stringify(bye));
    }
    if (this.#outbox.length > 0) {
      this.#log.warn(`${this.#outbox.length} messages were never delivered`);
    }
    if (ws) await closeSocket(ws, reason);
    this.#ws = undefined;
    if (!this.#registeredSettled) {
      this.#registeredSettled = true;
      this.#settle.reject(new RobotClientClosedError(reason));
    }
    this.#log.info(`Robot ${this.robotId} stopped: ${reason}`);
    this.#resolveClosed({ reason });
    this.emit("closed", { reason });
  }
}

/** Closes a socket and waits (at most 1 s) for its close event. */
function closeSocket(ws: WebSocket, reason: string): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, 1000);
    ws.addEventListener("close", done, { once: true });
    try {
      ws.close(1000, reason.slice(0, 100));
    } catch {
      done();
    }
  });
}
