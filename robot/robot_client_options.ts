/**
 * Options, events and errors of {@linkcode RobotClient} (see `robot_client.ts`).
 *
 * @module
 */

import type { JobResultLike } from "./job_result.ts";
import type { Envelope } from "./protocol_messages.ts";
import type { WorkflowExecutor } from "./workflow_engine.ts";

/** Where the client writes what it does. */
export interface RobotLogger {
  /** Chatty detail (ignored messages, socket errors before a close). */
  debug(message: string, details?: Record<string, unknown>): void;
  /** Normal operation: registered, job done, paused. */
  info(message: string, details?: Record<string, unknown>): void;
  /** Something went wrong but the robot carries on (disconnects, orchestrator errors). */
  warn(message: string, details?: Record<string, unknown>): void;
  /** The robot cannot carry on as asked (registration refused). */
  error(message: string, details?: Record<string, unknown>): void;
}

/** Host load figures for heartbeats, each 0–100. */
export interface RobotMetrics {
  /** CPU load, 0–100. */
  cpu_percent?: number;
  /** Memory in use, 0–100. */
  memory_percent?: number;
  /** Disk in use, 0–100. */
  disk_percent?: number;
}

/** A WebSocket constructor (the global one, or a test double). */
export type WebSocketConstructor = new (
  url: string | URL,
  protocols?: string | string[],
) => WebSocket;

/** Options of a {@linkcode RobotClient}. */
export interface RobotClientOptions {
  /** Orchestrator endpoint, e.g. `ws://localhost:8765/ws/robot`. */
  url: string;
  /**
   * Endpoints of several orchestrator nodes on one database (README, "Scaling out"): the
   * robot connects to the first and moves to the next one, round the list, at every
   * reconnect (after the backoff delay), so that a node that died is left for a live one.
   * @default [url]
   */
  urls?: string[];
  /** Robot token, sent as `payload.auth_token` of `register`. */
  token: string;
  /** Display name of the robot. */
  name: string;
  /** Stable id of the robot. @default name */
  robotId?: string;
  /** What the robot can run, e.g. `["browser"]`. @default [] */
  capabilities?: string[];
  /** Free labels used for routing. @default [] */
  tags?: string[];
  /** Jobs run at once; more are rejected. @default 1 */
  maxConcurrentJobs?: number;
  /** Environment name sent at registration, e.g. `production`. */
  environment?: string;
  /** Robot software version sent at registration. @default "0.1.0" */
  version?: string;
  /** Runs a workflow. @default executeWorkflow */
  executor?: WorkflowExecutor;
  /** WebSocket implementation. @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff in milliseconds. @default {initialDelayMs: 500, maxDelayMs: 30_000} */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Where the client writes what it does. @default warnings and errors to the console */
  logger?: RobotLogger;
  /** Wait for `robot_registered` before reconnecting, in milliseconds. @default 10_000 */
  registerTimeoutMs?: number;
  /** Longest wait before log entries are sent, in milliseconds. @default 200 */
  logFlushIntervalMs?: number;
  /** Log entries per `job_log`; a full batch is sent at once. @default 50 */
  logBatchSize?: number;
  /** Shortest gap between two `job_progress` of a job, in milliseconds. @default 200 */
  progressIntervalMs?: number;
  /** How long a forced stop (`close()`) waits for cancelled jobs, in milliseconds. @default 5000 */
  forceCloseMs?: number;
  /** Heartbeat interval until the orchestrator sets one, in seconds. @default 30 */
  defaultHeartbeatIntervalSeconds?: number;
  /** Load figures added to each heartbeat. */
  metrics?: () => RobotMetrics;
  /** Milliseconds since the epoch, for message timestamps. @default Date.now */
  now?: () => number;
  /** Message ids. @default crypto.randomUUID */
  newId?: () => string;
  /** Jitter source in [0, 1). @default Math.random */
  random?: () => number;
}

/** What `robot_registered` said. */
export interface RegisteredInfo {
  /** The robot's id. */
  robotId: string;
  /** The orchestrator's message. */
  message: string;
  /** Seconds. */
  heartbeatIntervalSeconds: number;
  /** Seconds, when the orchestrator sent it. */
  heartbeatTimeoutSeconds?: number;
  /** Jobs the orchestrator let this robot keep after a reconnect. */
  resumeJobIds?: string[];
  /** False for the first registration, true after a reconnect. */
  reconnected: boolean;
}

/** Why the client stopped. */
export interface ClosedInfo {
  /** The reason given to `shutdown`/`close`, or why registration was refused. */
  reason: string;
}

/** A job this robot took, as reported in events. */
export interface JobInfo {
  /** The job. */
  jobId: string;
  /** The lease of this attempt. */
  leaseId: string;
  /** `workflow.name` of the assignment (may be empty). */
  workflowName: string;
}

/** Events of {@linkcode RobotClient}, by type, with their `detail`. */
export interface RobotClientEventMap {
  /** Each successful registration (first and after reconnects). */
  registered: RegisteredInfo;
  /** `robot_registered {success: false}` or close code 4001: the client stops. */
  registration_failed: { message: string };
  /** Every message received, after parsing. */
  message: Envelope;
  /** A job was accepted and started. */
  job_started: JobInfo;
  /** A job ended; its result was sent (or kept until reconnection). */
  job_finished: JobInfo & { result: JobResultLike };
  /** An assignment was refused (capacity, paused, shutting down). */
  job_rejected: JobInfo & { reason: string };
  /** The connection closed (code and reason of the close frame). */
  disconnected: { code: number; reason: string };
  /** A reconnect is scheduled after `delayMs` milliseconds (`attempt` counts from 1). */
  reconnecting: { attempt: number; delayMs: number };
  /** An `error` message from the orchestrator. */
  server_error: { code: string; message: string; details?: unknown; correlationId?: string };
  /** A `pause` arrived: new jobs are refused. */
  paused: Record<string, never>;
  /** A `resume` arrived: new jobs are taken again. */
  resumed: Record<string, never>;
  /** A `shutdown` message arrived. */
  shutdown_requested: { graceful: boolean };
  /** The client stopped for good. */
  closed: ClosedInfo;
}

/** The orchestrator refused the registration (bad token, …). */
export class RobotRegistrationError extends Error {
  /**
   * Creates the error.
   *
   * @param message The orchestrator's message.
   */
  constructor(message: string) {
    super(`Registration refused: ${message}`);
    this.name = "RobotRegistrationError";
  }
}

/** The client was closed before it could register. */
export class RobotClientClosedError extends Error {
  /**
   * Creates the error.
   *
   * @param reason Why it was closed.
   */
  constructor(reason: string) {
    super(`Robot client closed before registering: ${reason}`);
    this.name = "RobotClientClosedError";
  }
}

/** A logger writing warnings and errors to the console; debug and info are dropped. */
export const consoleWarnLogger: RobotLogger = {
  debug: () => {},
  info: () => {},
  warn: (m, d) => console.warn(m, ...(d ? [d] : [])),
  error: (m, d) => console.error(m, ...(d ? [d] : [])),
};
