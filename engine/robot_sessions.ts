/**
 * The orchestrator's side of the robot WebSocket protocol (robot-protocol.md, version 1):
 * registration and authentication, heartbeats measured on the server's clock, leases
 * checked on every job message, and lost robots' jobs requeued.
 *
 * Transport-agnostic: a connection is anything with `send(text)` and `close(code, reason)`;
 * the HTTP adapter feeds it frames.
 *
 * @module
 */
import { timingSafeEqual } from "../config/tokens.ts";
import { DEFAULT_ORG } from "./org_index.ts";
import { tokenSha256 } from "./token_ledger.ts";
import {
  InvalidTransitionError,
  type JobResult,
  type JobStatus,
  TERMINAL_STATUSES,
} from "../actors/mod.ts";
import { WrongExpectedVersionError } from "../events/mod.ts";
import type { JobDispatcher } from "./job_dispatcher.ts";
import type { Change, EngineCore } from "./orchestrator_engine.ts";
import { type Envelope, envelope, isFrameError, parseFrame } from "./protocol.ts";
import { TokenBucket } from "./rate_limiter.ts";
import {
  checkText,
  validateJobRef,
  validateLogEntries,
  validateProgress,
  validateRegistration,
  validateResult,
} from "./robot_messages.ts";

/** A robot's transport. */
export interface RobotLink {
  send(text: string): void;
  close(code: number, reason: string): void;
}

/** Live, in-memory facts about a connected robot (never events). */
export interface RobotLiveness {
  /** Server time of the last message, ms since epoch. */
  lastSeen: number;
  cpu_percent: number | null;
  memory_percent: number | null;
  disk_percent: number | null;
}

interface Session extends RobotLiveness {
  link: RobotLink;
  robotId: string | null;
  garbage: number;
  /** Per-connection message rate limit. */
  bucket: TokenBucket;
  /** Frames received and not yet handled. */
  pending: number;
  /** Frames refused by the rate limit since the last `rate_limited` notice. */
  refused: number;
  /** Server time of the last `rate_limited` notice, ms since epoch. */
  refusedNoticeAt: number;
  /**
   * Jobs the log gave this robot that its previous heartbeat's `active_job_ids` omitted,
   * with the lease they had then (see {@linkcode RobotSessions} `#reconcile`).
   */
  missing: Map<string, string>;
}

/** Consecutive bad frames after which a connection is closed (code 1008). */
const MAX_GARBAGE = 20;

/** Frames of one connection waiting to be handled beyond which new ones are refused. */
export const MAX_PENDING_FRAMES = 1000;

/** All robot connections of this node. */
export class RobotSessions {
  #core: EngineCore;
  #dispatcher!: JobDispatcher;
  #robotToken: string;
  #byRobot = new Map<string, Session>();
  #sessions = new Set<Session>();
  #sweep: unknown = null;
  #closed = false;
  /** Reconnect grace timers of robots whose connection dropped, by robot id. */
  #graces = new Map<string, unknown>();
  /** Tail of each connection's message handling. */
  #chains = new Map<Session, Promise<void>>();
  /** The `draining` notice sent to every robot while the orchestrator shuts down. */
  #drainNotice: Record<string, unknown> | null = null;
  /**
   * Since when (server time, ms) this node knows each in-flight job's current assignment:
   * when it sent the `job_assignment`, or when the read models applied the `job.dispatched`
   * (written elsewhere, or replayed at start: then the time of the replay). Entries go when
   * the read models apply an event that ends the lease.
   */
  #assignedSince = new Map<string, { leaseId: string; at: number }>();

  /**
   * The provisioned credential each connection registered with: the token stream
   * (`robot_token-<robot id>` for the robot's own token, `api_token-<token id>` for an API
   * token of role `robot`) and the SHA-256 of the token. None for the shared robot token.
   * Checked again whenever that stream changes ({@linkcode RobotSessions.recheckCredential}).
   */
  #credentialOf = new WeakMap<Session, { stream: string; sha256: string }>();
  /**
   * Whether `token` is the robot's own provisioning token (set by the orchestrator; see
   * `robot_tokens.ts`). Registration accepts it as well as the shared robot token.
   */
  ownTokenValid: (robotId: string, token: string) => Promise<boolean> = () =>
    Promise.resolve(false);
  /**
   * The org and id of a token that is neither the shared robot token nor the robot's own
   * one: an active API token of role `robot` (set by the orchestrator; see `api_tokens.ts`);
   * null when refused.
   */
  robotApiToken: (token: string) => Promise<{ org_id: string; token_id: string } | null> = () =>
    Promise.resolve(null);
  /**
   * Whether the token whose SHA-256 is `sha256` is still the active token of the credential
   * stream `stream` (`robot_token-<id>` or `api_token-<id>`; set by the orchestrator).
   */
  credentialActive: (stream: string, sha256: string) => boolean = () => true;
  /** The org of the robot's own provisioning token (set by the orchestrator). */
  ownTokenOrg: (robotId: string) => string = () => DEFAULT_ORG;
  /**
   * The org a robot id already belongs to (its stream or its provisioning token), null when
   * the id is new (set by the orchestrator). A robot never changes org.
   */
  existingRobotOrg: (robotId: string) => string | null = () => null;
  /**
   * Cluster mode: this orchestrator node's id, recorded in `robot.connected` and
   * `robot.disconnected` (`engine/cluster.ts`). Null on a single node.
   */
  nodeId: string | null = null;

  constructor(core: EngineCore, robotToken: string) {
    this.#core = core;
    this.#robotToken = robotToken;
    // Kept after close(): a shutdown checkpoint folds the log's tail after the stop.
    core.onEvents((events) => {
      for (const e of events) {
        if (!e.streamId.startsWith("job-")) continue;
        const jobId = e.streamId.slice(4);
        if (e.type === "job.dispatched") {
          const leaseId = String(e.data.lease_id);
          if (this.#assignedSince.get(jobId)?.leaseId !== leaseId) {
            this.#assignedSince.set(jobId, { leaseId, at: core.clock.now() });
          }
        } else if (LEASE_ENDING_EVENTS.has(e.type)) {
          this.#assignedSince.delete(jobId);
        }
      }
    });
  }

  /**
   * The in-flight assignments folded from the log, for a start-up checkpoint
   * (`engine/startup_checkpoint.ts`): job id → lease id.
   */
  checkpointState(): unknown {
    return new Map([...this.#assignedSince].map(([jobId, a]) => [jobId, a.leaseId]));
  }

  /**
   * Restores {@linkcode RobotSessions.checkpointState}; each assignment is known since now,
   * as when the `job.dispatched` is replayed at start.
   */
  restoreState(state: unknown): void {
    const now = this.#core.clock.now();
    this.#assignedSince.clear();
    for (const [jobId, leaseId] of state as Map<string, string>) {
      this.#assignedSince.set(jobId, { leaseId, at: now });
    }
  }

  /** Wires the dispatcher (they depend on each other). Starts the heartbeat sweep. */
  attach(dispatcher: JobDispatcher): void {
    this.#dispatcher = dispatcher;
    this.#scheduleSweep();
  }

  /**
   * Closes the robot's connection (code 4001) when it registered with its own token and that
   * token is no longer active (revoked or replaced). A robot on the shared token keeps its
   * connection. (The orchestrator also does this from the log on every node.)
   * @returns whether a connection was closed.
   */
  closeOwnTokenSession(robotId: string): boolean {
    return this.recheckCredential(`robot_token-${robotId}`) > 0;
  }

  /**
   * Closes (code 4001, "robot token revoked") every connection registered with a token of
   * the credential stream `stream` that is no longer active: called by the orchestrator when
   * the log shows that stream changed (`robot_token.revoked`, a rotation's
   * `robot_token.issued`, `api_token.revoked`), on every node, so a robot connected to any
   * node is closed. The token is refused from then on (4001 "invalid token" on registering).
   * @returns how many connections were closed.
   */
  recheckCredential(stream: string): number {
    let closed = 0;
    for (const s of this.#byRobot.values()) {
      const credential = this.#credentialOf.get(s);
      if (credential?.stream !== stream) continue;
      if (this.credentialActive(credential.stream, credential.sha256)) continue;
      this.#credentialOf.delete(s);
      s.link.close(4001, "robot token revoked");
      closed++;
    }
    return closed;
  }

  /**
   * Cluster mode: the robot registered on another node (the log says so), so this node's
   * connection of it, if any, is closed (code 4002) without writing anything: the other
   * node holds the robot and its jobs now.
   * @returns whether a connection was closed.
   */
  handOver(robotId: string): boolean {
    const s = this.#byRobot.get(robotId);
    if (!s || !this.#movedAway(robotId)) return false;
    this.#byRobot.delete(robotId);
    this.#sessions.delete(s);
    this.#clearGrace(robotId);
    s.robotId = null;
    s.link.close(4002, "superseded by a connection to another orchestrator node");
    return true;
  }

  /**
   * Closes the robot's connection (code 4003) without writing anything: the leader recorded
   * it lost while this node still held it (this node's heartbeat row lagged). The robot
   * reconnects and registers again, to this node or another.
   * @returns whether a connection was closed.
   */
  dropTakenForLost(robotId: string): boolean {
    const s = this.#byRobot.get(robotId);
    if (!s) return false;
    this.#byRobot.delete(robotId);
    this.#sessions.delete(s);
    this.#clearGrace(robotId);
    s.robotId = null;
    s.link.close(4003, "recorded lost by the cluster's leader; register again");
    return true;
  }

  /** Robot ids with a registered connection. */
  connectedRobotIds(): Iterable<string> {
    return this.#byRobot.keys();
  }

  /** Liveness of a connected robot. */
  liveness(robotId: string): RobotLiveness | undefined {
    return this.#byRobot.get(robotId);
  }

  /** Sends a message to a connected robot; false when it has no connection. */
  send(robotId: string, type: string, payload: Record<string, unknown>, corr?: string): boolean {
    const s = this.#byRobot.get(robotId);
    if (!s) return false;
    if (type === "job_assignment") {
      this.#assignedSince.set(String(payload.job_id), {
        leaseId: String(payload.lease_id),
        at: this.#core.clock.now(),
      });
    }
    return this.#send(s, type, payload, corr);
  }

  #send(s: Session, type: string, payload: Record<string, unknown>, corr?: string): boolean {
    try {
      s.link.send(JSON.stringify(envelope(type, payload, this.#core.clock.now(), corr)));
      return true;
    } catch {
      // A connection that cannot be written to is gone: forget it at once, so that no
      // job is offered to it again, and record the loss.
      if (s.robotId !== null && this.#byRobot.get(s.robotId) === s) {
        const robotId = s.robotId;
        this.#byRobot.delete(robotId);
        this.#sessions.delete(s);
        s.robotId = null;
        s.link.close(1011, "send failed");
        queueMicrotask(() =>
          this.markLost(robotId, "send_failed").catch((e) => console.error("markLost:", e))
        );
      }
      return false;
    }
  }

  #error(s: Session, code: string, message: string, corr?: string): void {
    this.#send(s, "error", { code, message }, corr);
  }

  /**
   * Sends a message to every registered robot (at shutdown: `draining`); robots that
   * register later get it too, until {@linkcode RobotSessions.close}.
   * @returns the robot ids it was sent to.
   */
  announceDrain(payload: Record<string, unknown>): string[] {
    this.#drainNotice = payload;
    return [...this.#byRobot.keys()].filter((robotId) => this.send(robotId, "draining", payload));
  }

  /**
   * Admits a frame under the connection's rate limit (`robotMessageRate` per second,
   * bursts of twice that) and the limit of frames waiting to be handled. A refused frame
   * is dropped; the robot gets one `error {code: "rate_limited"}` per second saying how
   * many were dropped, and a connection with more than a burst of frames refused within
   * a second of that notice is closed (1008).
   */
  #admit(s: Session): boolean {
    const now = this.#core.clock.now();
    s.lastSeen = now;
    if (s.pending < MAX_PENDING_FRAMES && s.bucket.take(now)) return true;
    s.refused++;
    if (now - s.refusedNoticeAt >= 1000) {
      this.#error(
        s,
        "rate_limited",
        `This connection sends more than ${s.bucket.ratePerSecond} messages per second ` +
          `(bursts of ${s.bucket.burst}) or has ${MAX_PENDING_FRAMES} waiting: ` +
          `${s.refused} message(s) dropped`,
      );
      s.refusedNoticeAt = now;
      s.refused = 0;
    } else if (s.refused > s.bucket.burst) {
      s.link.close(1008, "rate limit exceeded");
    }
    return false;
  }

  /**
   * Opens a connection. `authorization` is the upgrade request's `Authorization` header.
   * @returns handlers for the transport to call on each text frame and on close.
   */
  open(link: RobotLink, authorization: string | null): {
    onMessage(text: string): Promise<void>;
    onClose(): Promise<void>;
  } {
    const now = this.#core.clock.now();
    const s: Session = {
      link,
      robotId: null,
      garbage: 0,
      bucket: new TokenBucket({ ratePerSecond: this.#core.config.robotMessageRate, nowMs: now }),
      pending: 0,
      refused: 0,
      refusedNoticeAt: -Infinity,
      missing: new Map(),
      lastSeen: now,
      cpu_percent: null,
      memory_percent: null,
      disk_percent: null,
    };
    this.#sessions.add(s);
    const headerToken = authorization?.startsWith("Bearer ") ? authorization.slice(7) : null;
    // Frames of one connection are handled strictly in order; after close() none is.
    const enqueue = (work: () => Promise<void>): Promise<void> => {
      if (this.#closed) return Promise.resolve();
      const next = (this.#chains.get(s) ?? Promise.resolve()).then(() =>
        this.#closed ? undefined : work()
      );
      this.#chains.set(s, next);
      next.finally(() => {
        if (this.#chains.get(s) === next) this.#chains.delete(s);
      });
      return next;
    };
    return {
      onMessage: (text) => {
        if (this.#closed || !this.#admit(s)) return Promise.resolve();
        const receivedAt = s.lastSeen;
        s.pending++;
        return enqueue(() => this.#onFrame(s, text, headerToken, receivedAt)).finally(() =>
          s.pending--
        );
      },
      onClose: () => enqueue(() => this.#onClose(s, "connection_closed")),
    };
  }

  async #onFrame(
    s: Session,
    text: string,
    headerToken: string | null,
    receivedAt: number,
  ): Promise<void> {
    const msg = parseFrame(text);
    if (isFrameError(msg)) {
      this.#error(s, msg.code, msg.message, msg.correlationId);
      if (++s.garbage >= MAX_GARBAGE) s.link.close(1008, "too many invalid frames");
      return;
    }
    s.garbage = 0;
    try {
      await this.#handle(s, msg, headerToken, receivedAt);
    } catch (error) {
      if (error instanceof InvalidTransitionError) {
        this.#error(s, "invalid_transition", error.message, msg.id);
      } else if (error instanceof TypeError || error instanceof RangeError) {
        this.#error(s, "invalid_message", error.message, msg.id);
      } else {
        console.error(`robot message ${msg.type} failed:`, error);
        this.#error(s, "internal_error", "The orchestrator could not process the message", msg.id);
      }
    }
  }

  async #handle(
    s: Session,
    msg: Envelope,
    headerToken: string | null,
    receivedAt: number,
  ): Promise<void> {
    if (msg.type === "register") return await this.#register(s, msg, headerToken);
    if (msg.type === "error") return;
    if (s.robotId === null) {
      this.#error(s, "not_registered", "Send register first", msg.id);
      return;
    }
    const p = msg.payload;
    switch (msg.type) {
      case "heartbeat":
        s.cpu_percent = numOrNull(p.cpu_percent);
        s.memory_percent = numOrNull(p.memory_percent);
        s.disk_percent = numOrNull(p.disk_percent);
        if (p.active_job_ids !== undefined) {
          await this.#reconcile(s, s.robotId, activeJobIds(p.active_job_ids), receivedAt);
        }
        // After the reconciliation: the acknowledgement says the heartbeat was handled.
        this.#send(s, "heartbeat_ack", { robot_id: s.robotId }, msg.id);
        return;
      case "status_update": {
        if (typeof p.status !== "string") {
          throw new TypeError("payload.status must be online, busy, paused or maintenance");
        }
        const reason = p.reason === undefined || p.reason === null
          ? undefined
          : checkText(String(p.reason), "payload.reason", 256);
        return await this.#statusUpdate(s.robotId, p.status, reason);
      }
      case "disconnect": {
        // Checked before anything changes: the reason is written to the log.
        const reason = typeof p.reason === "string" && p.reason
          ? checkText(p.reason, "payload.reason", 256)
          : "robot_disconnected";
        await this.#onClose(s, reason);
        s.link.close(1000, "goodbye");
        return;
      }
    }
    const { jobId, leaseId } = validateJobRef(p);
    const job = this.#core.jobs.get(jobId)?.snapshot;
    if (!job || job.context.job_id === null) {
      this.#error(s, "unknown_job", `Job ${jobId} does not exist`, msg.id);
      return;
    }
    if (job.context.lease_id !== leaseId || job.context.robot_id !== s.robotId) {
      this.#error(s, "stale_lease", `Lease ${leaseId} of job ${jobId} is not current`, msg.id);
      return;
    }
    const jobStream = `job-${jobId}`;
    const now = this.#core.nowIso();
    switch (msg.type) {
      case "job_accepted":
        if (job.value !== "dispatched") return;
        await this.#core.commit([{
          streamId: jobStream,
          events: [{ type: "job.started", data: { lease_id: leaseId, started_at: now } }],
        }]);
        return;
      case "job_rejected":
        if (job.value !== "dispatched" && job.value !== "running") {
          return this.#notRunning(s, jobId, job.value, msg.id);
        }
        await this.#core.commit([
          {
            streamId: jobStream,
            events: [{
              type: "job.rejected",
              data: {
                robot_id: s.robotId,
                lease_id: leaseId,
                reason: checkText(String(p.reason ?? ""), "payload.reason", 1024),
              },
            }],
          },
          this.#release(s.robotId, jobId, "rejected"),
        ]);
        this.#dispatcher.disarm(jobId);
        this.#dispatcher.request();
        return;
      case "job_progress": {
        const progress = validateProgress(p);
        if (job.value !== "running") return this.#notRunning(s, jobId, job.value, msg.id);
        await this.#core.commit([{
          streamId: jobStream,
          events: [{ type: "job.progressed", data: { lease_id: leaseId, ...progress } }],
        }]);
        return;
      }
      case "job_log": {
        const entries = validateLogEntries(p.entries, "payload.entries");
        if (job.value !== "running") return this.#notRunning(s, jobId, job.value, msg.id);
        if (entries.length === 0) return;
        await this.#core.commit([{
          streamId: jobStream,
          events: [{ type: "job.logged", data: { lease_id: leaseId, entries } }],
        }]);
        return;
      }
      case "job_result": {
        const result = validateResult(p);
        // A result resent after a lost acknowledgement: already recorded for this lease.
        if (!TERMINAL_STATUSES.has(job.value as JobStatus)) {
          await this.#result(s.robotId, jobId, leaseId, result, job.value === "dispatched");
        }
        const status = this.#core.jobStatus(jobId);
        this.#send(s, "job_result_ack", { job_id: jobId, lease_id: leaseId, status }, msg.id);
        return;
      }
    }
  }

  /**
   * Reconciles the jobs the log gives a robot with the `active_job_ids` of its heartbeat
   * (robot-protocol.md: every heartbeat lists the jobs the robot holds). A job the log says
   * is dispatched to or running on this robot, under the same lease, but which two
   * consecutive heartbeats of this connection omit is requeued as lost (`job.queued
   * {reason: "robot_lost: not_in_heartbeats"}` with `robot.job_released`), once: the
   * requeue ends the lease, so the robot's messages for it are refused (`stale_lease`).
   *
   * An assignment in flight is not mistaken for lost: a heartbeat counts only when it was
   * received (`receivedAt`, server time in ms, taken when the frame arrived, not when it was
   * handled: frames may wait behind a slow write) after this node sent the assignment or
   * learned of it, and the second omission only when it was received at least
   * `heartbeatInterval` seconds after that; the robot sends a heartbeat every interval, so
   * by then it had the assignment. The registration reconciles at once (`active_job_ids`
   * of `register`); this covers assignments that reach the read models after it, e.g. one
   * appended by a killed orchestrator whose transaction committed, or became visible to
   * the gap-safe read, after this node replayed the log: it would otherwise wait for the
   * job's deadline.
   */
  async #reconcile(
    s: Session,
    robotId: string,
    active: ReadonlySet<string>,
    receivedAt: number,
  ): Promise<void> {
    const held = this.#core.robots.get(robotId)?.snapshot.context.current_jobs ?? [];
    const intervalMs = this.#core.config.heartbeatInterval * 1000;
    const missing = new Map<string, string>();
    const lost: string[] = [];
    for (const jobId of held) {
      if (active.has(jobId)) continue;
      const job = this.#core.jobs.get(jobId)?.snapshot;
      const leaseId = job?.context.lease_id;
      if (
        !job || !leaseId || job.context.robot_id !== robotId ||
        (job.value !== "dispatched" && job.value !== "running")
      ) continue;
      const since = this.#assignedSince.get(jobId);
      const knownAt = since?.leaseId === leaseId ? since.at : -Infinity;
      if (receivedAt <= knownAt) continue; // sent before the robot could have it
      if (s.missing.get(jobId) === leaseId && receivedAt - knownAt >= intervalMs) {
        lost.push(jobId);
      } else missing.set(jobId, leaseId);
    }
    s.missing = missing;
    for (const jobId of lost) {
      const leaseId = this.#core.jobs.get(jobId)?.snapshot.context.lease_id;
      try {
        await this.#dispatcher.releaseLease(jobId, robotId, "robot_lost: not_in_heartbeats");
      } catch (error) {
        // The job ended or moved meanwhile (a deadline, a cancel grace, another node):
        // whatever ended the lease already recorded it.
        if (
          error instanceof InvalidTransitionError || error instanceof WrongExpectedVersionError
        ) continue;
        s.missing.set(jobId, leaseId ?? ""); // try again at the next heartbeat
        throw error;
      }
      console.error(
        `robot ${robotId} does not report job ${jobId} (lease ${leaseId}) in two heartbeats: ` +
          "requeued as lost",
      );
    }
  }

  /** Answers a job message that its job's state does not allow (nothing is written). */
  #notRunning(s: Session, jobId: string, status: unknown, corr: string): void {
    this.#error(s, "job_not_running", `Job ${jobId} is ${String(status)}`, corr);
  }

  async #result(
    robotId: string,
    jobId: string,
    leaseId: string,
    result: JobResult,
    notStarted: boolean,
  ): Promise<void> {
    const now = this.#core.nowIso();
    const events: Change["events"] = [];
    if (notStarted) {
      events.push({ type: "job.started", data: { lease_id: leaseId, started_at: now } });
    }
    if (result.status === "completed") {
      events.push({
        type: "job.completed",
        data: { lease_id: leaseId, completed_at: now, result },
      });
    } else if (result.status === "failed") {
      const error = result.error ? `${result.error.type}: ${result.error.message}` : "failed";
      events.push(this.#dispatcher.failureEvent(
        jobId,
        { errorType: result.error?.type ?? "Error", error, leaseId, result },
        { type: "job.failed", data: { lease_id: leaseId, completed_at: now, error, result } },
      ));
    } else {
      events.push({
        type: "job.cancelled",
        data: {
          cancelled_at: now,
          reason: this.#core.jobs.get(jobId)?.snapshot.context.cancel_reason ??
            "cancelled by robot",
          result,
        },
      });
    }
    await this.#core.commit([
      { streamId: `job-${jobId}`, events },
      this.#release(robotId, jobId, result.status),
    ]);
    this.#dispatcher.disarm(jobId);
    this.#dispatcher.request();
  }

  #release(robotId: string, jobId: string, reason: string): Change {
    return {
      streamId: `robot-${robotId}`,
      events: [{ type: "robot.job_released", data: { job_id: jobId, reason } }],
    };
  }

  async #register(s: Session, msg: Envelope, headerToken: string | null): Promise<void> {
    const token = headerToken ??
      (typeof msg.payload.auth_token === "string" ? msg.payload.auth_token : null);
    const claimed = typeof msg.payload.robot_id === "string" ? msg.payload.robot_id : null;
    const shared = token !== null && timingSafeEqual(token, this.#robotToken);
    const own = !shared && token !== null && claimed !== null &&
      await this.ownTokenValid(claimed, token);
    const apiToken = shared || own || token === null ? null : await this.robotApiToken(token);
    // The robot belongs to the org of the token it registered with.
    const org = shared ? DEFAULT_ORG : own ? this.ownTokenOrg(claimed!) : apiToken?.org_id ?? null;
    const credential = own
      ? { stream: `robot_token-${claimed}`, sha256: await tokenSha256(token!) }
      : apiToken
      ? { stream: `api_token-${apiToken.token_id}`, sha256: await tokenSha256(token!) }
      : null;
    if (
      org === null || (credential && !this.credentialActive(credential.stream, credential.sha256))
    ) {
      // (A token revoked while it was being checked is refused as well.)
      this.#send(s, "robot_registered", {
        robot_id: msg.payload.robot_id ?? null,
        success: false,
        message: "Invalid robot token",
      }, msg.id);
      s.link.close(4001, "invalid token");
      return;
    }
    const reg = validateRegistration(msg.payload, this.#core.nowIso());
    const existingOrg = this.existingRobotOrg(reg.robot_id);
    if (existingOrg !== null && existingOrg !== org) {
      // Robot ids are global: one org's token cannot take over another org's robot. The
      // answer is the same as for a wrong token, so the other org's robot does not leak.
      this.#send(s, "robot_registered", {
        robot_id: reg.robot_id,
        success: false,
        message: "Invalid robot token",
      }, msg.id);
      s.link.close(4001, "invalid token");
      return;
    }
    if (s.robotId !== null && s.robotId !== reg.robot_id) {
      // One connection is one robot: re-registering under another id would leave a ghost.
      this.#error(
        s,
        "already_registered",
        `This connection is robot ${s.robotId}; open a new connection for ${reg.robot_id}`,
        msg.id,
      );
      return;
    }
    const previous = this.#byRobot.get(reg.robot_id);
    if (previous && previous !== s) {
      // The newest connection of a robot wins; the old one is closed, not left invisible.
      previous.robotId = null;
      this.#sessions.delete(previous);
      previous.link.close(4002, "superseded by a new connection");
    }
    s.robotId = reg.robot_id;
    s.missing = new Map();
    this.#byRobot.set(reg.robot_id, s);
    if (credential) this.#credentialOf.set(s, credential);
    else this.#credentialOf.delete(s);
    this.#clearGrace(reg.robot_id);
    const state = this.#core.robots.get(reg.robot_id);
    const ctx = state?.snapshot.context;
    const events: Change["events"] = [];
    const changed = !ctx || ctx.robot_id === null || ctx.name !== reg.name ||
      ctx.max_concurrent_jobs !== reg.max_concurrent_jobs ||
      JSON.stringify([ctx.capabilities, ctx.tags, ctx.environment, ctx.version]) !==
        JSON.stringify([reg.capabilities, reg.tags, reg.environment, reg.version]);
    if (changed) events.push({ type: "robot.registered", data: { ...reg, org_id: org } });
    const node = this.nodeId === null ? {} : { node_id: this.nodeId };
    if (!state || state.snapshot.value === "offline") {
      events.push({
        type: "robot.connected",
        data: { connected_at: this.#core.nowIso(), ...node },
      });
    } else if (this.nodeId !== null && ctx?.node_id !== this.nodeId) {
      // The log has it connected to another node (which died, or lost it without a word
      // yet): this node takes the robot, and its jobs, over.
      events.push({
        type: "robot.connected",
        data: { connected_at: this.#core.nowIso(), ...node },
      });
    }
    if (events.length) {
      try {
        await this.#core.commit([{ streamId: `robot-${reg.robot_id}`, events }]);
      } catch (error) {
        // Nothing was written: the connection is not the robot's after all.
        if (this.#byRobot.get(reg.robot_id) === s) this.#byRobot.delete(reg.robot_id);
        s.robotId = null;
        if (this.#core.robotStatus(reg.robot_id) !== "offline") this.#armGrace(reg.robot_id);
        throw error;
      }
    }
    // Jobs the log says this robot holds: keep those it still runs, requeue the others.
    const held = this.#core.robots.get(reg.robot_id)?.snapshot.context.current_jobs ?? [];
    const active = new Set(
      Array.isArray(msg.payload.active_job_ids) ? msg.payload.active_job_ids : [],
    );
    const resume = held.filter((j) => active.has(j));
    for (const jobId of held.filter((j) => !active.has(j))) {
      await this.#dispatcher.releaseLease(jobId, reg.robot_id, "robot_restarted");
    }
    this.#send(s, "robot_registered", {
      robot_id: reg.robot_id,
      success: true,
      message: "registered",
      config: {
        heartbeat_interval: this.#core.config.heartbeatInterval,
        heartbeat_timeout: this.#core.config.heartbeatTimeout,
      },
      resume_job_ids: resume,
    }, msg.id);
    if (this.#drainNotice) this.#send(s, "draining", this.#drainNotice);
    this.#dispatcher.request();
  }

  async #statusUpdate(robotId: string, status: string, reason: unknown): Promise<void> {
    const current = this.#core.robotStatus(robotId);
    const now = this.#core.nowIso();
    if (status === "paused" || status === "maintenance") {
      if (current === "paused") return;
      await this.#core.commit([{
        streamId: `robot-${robotId}`,
        events: [{
          type: "robot.paused",
          data: { paused_at: now, reason: String(reason ?? status) },
        }],
      }]);
    } else if (status === "online" || status === "busy") {
      if (current !== "paused") return;
      await this.#core.commit([{
        streamId: `robot-${robotId}`,
        events: [{ type: "robot.resumed", data: { resumed_at: now } }],
      }]);
      this.#dispatcher.request();
    } else {
      throw new RangeError(`status must be online, busy, paused or maintenance, got ${status}`);
    }
  }

  /** Handles a lost connection: the robot goes offline and its jobs are requeued. */
  async #onClose(s: Session, reason: string): Promise<void> {
    this.#sessions.delete(s);
    const robotId = s.robotId;
    if (robotId === null || this.#byRobot.get(robotId) !== s) return;
    this.#byRobot.delete(robotId);
    s.robotId = null;
    const held = this.#core.robots.get(robotId)?.snapshot.context.current_jobs ?? [];
    if (reason !== "connection_closed" || this.#core.config.reconnectGrace <= 0 || !held.length) {
      return await this.markLost(robotId, reason);
    }
    // A dropped connection (no goodbye) may be a network blip: the robot keeps its jobs
    // for the grace period and keeps them for good if it re-registers with them in
    // `active_job_ids`; otherwise they are requeued when the grace period ends.
    this.#armGrace(robotId);
    // The grace starts when the connection dropped, before the write of that fact.
    await this.#disconnected(robotId, "connection_lost");
  }

  /** Requeues the robot's jobs after `reconnectGrace` seconds unless it is back by then. */
  #armGrace(robotId: string): void {
    this.#clearGrace(robotId);
    this.#graces.set(
      robotId,
      this.#core.clock.setTimeout(() => {
        this.#graces.delete(robotId);
        if (this.#closed || this.#byRobot.has(robotId)) return;
        this.markLost(robotId, "not_back_within_grace").catch((e) =>
          console.error(`requeue of ${robotId}'s jobs failed:`, e)
        );
      }, this.#core.config.reconnectGrace * 1000),
    );
  }

  #clearGrace(robotId: string): void {
    const handle = this.#graces.get(robotId);
    if (handle !== undefined) this.#core.clock.clearTimeout(handle);
    this.#graces.delete(robotId);
  }

  async #disconnected(robotId: string, reason: string): Promise<void> {
    if (this.#core.robotStatus(robotId) === "offline" || this.#movedAway(robotId)) return;
    const node = this.nodeId === null ? {} : { node_id: this.nodeId };
    try {
      await this.#core.commit([{
        streamId: `robot-${robotId}`,
        events: [{
          type: "robot.disconnected",
          data: { disconnected_at: this.#core.nowIso(), reason, ...node },
        }],
      }]);
    } catch (error) {
      // Two losses of one robot raced (a goodbye and a close, or two connections): the
      // other one, decided first in the same group commit, records it. Or the robot
      // re-registered on another node meanwhile, which now holds it.
      if (
        error instanceof InvalidTransitionError &&
        (error.state === "offline" || this.#movedAway(robotId))
      ) {
        return;
      }
      throw error;
    }
  }

  /**
   * Cluster mode: whether the log says another node holds the robot now (it re-registered
   * there), so that this node must not take it offline or requeue its jobs.
   */
  #movedAway(robotId: string): boolean {
    if (this.nodeId === null) return false;
    const nodeId = this.#core.robots.get(robotId)?.snapshot.context.node_id ?? null;
    return nodeId !== null && nodeId !== this.nodeId;
  }

  /** Records a robot as disconnected and requeues every job it held. */
  async markLost(robotId: string, reason: string): Promise<void> {
    const ctx = this.#core.robots.get(robotId)?.snapshot.context;
    if (!ctx || this.#movedAway(robotId)) return;
    for (const jobId of [...ctx.current_jobs]) {
      await this.#dispatcher.releaseLease(jobId, robotId, `robot_lost: ${reason}`).catch((e) =>
        console.error(`requeue of ${jobId} failed:`, e)
      );
    }
    await this.#disconnected(robotId, reason);
    this.#dispatcher.request();
  }

  #scheduleSweep(): void {
    const intervalMs = this.#core.config.heartbeatInterval * 1000;
    this.#sweep = this.#core.clock.setTimeout(() => {
      if (this.#closed) return;
      const limit = this.#core.clock.now() - this.#core.config.heartbeatTimeout * 1000;
      for (const s of [...this.#sessions]) {
        if (s.lastSeen >= limit) continue;
        s.link.close(4008, "heartbeat timeout");
        this.#onClose(s, "heartbeat_timeout").catch((e) => console.error("sweep failed:", e));
      }
      this.#scheduleSweep();
    }, intervalMs);
  }

  /**
   * Stops the heartbeat sweep, closes every connection (code 1001) and waits for the
   * messages being handled; later frames are ignored (robots reconnect to the next start).
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweep !== null) this.#core.clock.clearTimeout(this.#sweep);
    this.#sweep = null;
    for (const robotId of [...this.#graces.keys()]) this.#clearGrace(robotId);
    for (const s of this.#sessions) s.link.close(1001, "orchestrator stopping");
    this.#sessions.clear();
    this.#byRobot.clear();
    await Promise.allSettled([...this.#chains.values()]);
  }
}

/**
 * The `active_job_ids` of a heartbeat (robot-protocol.md: `string[]`).
 * @throws {TypeError} when it is not an array of strings.
 */
function activeJobIds(v: unknown): Set<string> {
  if (!Array.isArray(v) || v.some((id) => typeof id !== "string")) {
    throw new TypeError("payload.active_job_ids must be an array of job ids (strings)");
  }
  return new Set(v as string[]);
}

/** Job events that end a lease (see `audit/job_invariants.ts`). */
const LEASE_ENDING_EVENTS: ReadonlySet<string> = new Set([
  "job.queued",
  "job.rejected",
  "job.retry_scheduled",
  "job.completed",
  "job.failed",
  "job.cancelled",
  "job.timed_out",
]);

function numOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
