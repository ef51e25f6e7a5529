/**
 * Configuration from the environment, with the reference's names and defaults
 * (`ORCHESTRATOR_HOST` 0.0.0.0, `ORCHESTRATOR_PORT` 8765, `DEFAULT_JOB_TIMEOUT` 3600 s).
 *
 * @module
 */
import {
  DEFAULT_RETRYABLE_ERRORS,
  type LoadBalancingStrategy,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  STRATEGIES,
} from "../engine/mod.ts";
import { type AlertConfig, parseAlertConfig } from "../alerts/mod.ts";

/** The orchestrator's configuration. */
export interface Config {
  /** @default "0.0.0.0" */
  host: string;
  /** @default 8765 */
  port: number;
  /** PostgreSQL URL; when unset the embedded PGlite store in `dataDir` is used. */
  databaseUrl: string | null;
  /** Schema of the `events` table on PostgreSQL. @default "public" */
  databaseSchema: string | null;
  /**
   * `DATABASE_POOLER`: `transaction` when `DATABASE_URL` goes through a transaction-mode
   * pooler (PgBouncer `pool_mode=transaction`): no prepared statements, no LISTEN (polling).
   * @default "none"
   */
  databasePooler: "none" | "transaction";
  /** @default "./data" */
  dataDir: string;
  apiToken: string | null;
  robotToken: string | null;
  /** Seconds. @default 3600 */
  defaultJobTimeout: number;
  /** Seconds. @default 5 */
  heartbeatInterval: number;
  /** Seconds. @default 30 */
  heartbeatTimeout: number;
  /** Seconds. @default 30 */
  cancelGrace: number;
  /** Seconds a dropped robot keeps its jobs to reconnect with them. @default 15 */
  reconnectGrace: number;
  /** @default "least_loaded" */
  loadBalancing: LoadBalancingStrategy;
  /** Seconds between seals of the log; 0 disables them. @default 300 */
  sealInterval: number;
  /** Error types that are retried (`RETRYABLE_ERRORS`, comma separated). */
  retryableErrors: string[];
  /** Seconds a graceful shutdown waits for running jobs (`DRAIN_TIMEOUT`). @default 30 */
  drainTimeout: number;
  /**
   * Events a start (or a graceful shutdown) must have applied since the last start-up
   * checkpoint to write one (`CHECKPOINT_EVERY`); 0: never write or read one. @default 100000
   */
  checkpointEvery: number;
  /**
   * Seconds a graceful shutdown may spend writing a start-up checkpoint
   * (`SHUTDOWN_CHECKPOINT_TIMEOUT`); 0: none at shutdown. @default 10
   */
  shutdownCheckpointTimeout: number;
  /** Seconds without any answer, even to a ping, after which a robot's socket is closed. @default 20 */
  pingTimeout: number;
  /** Messages per second per robot connection, bursts of twice that. @default 500 */
  robotMessageRate: number;
  /** `LOG_FORMAT`: request log records as JSON lines or text. @default "json" */
  logFormat: LogFormat;
  /** `LOG_LEVEL`: lowest level logged (`off`: none). @default "info" */
  logLevel: LogLevel | "off";
  /** `ALERTS` and `ALERT_*`: alert thresholds and webhooks (`alerts/alert_config.ts`). */
  alerts: AlertConfig;
  /**
   * `ORCHESTRATOR_CLUSTER=on`: this process is one node of several on the same PostgreSQL
   * database (needs `DATABASE_URL`). @default false
   */
  cluster: boolean;
  /** `NODE_ID`: this node's id in the cluster. @default host name, pid and a random suffix */
  nodeId: string | null;
}

/**
 * Reads the configuration from environment variables.
 * @throws {RangeError} naming the variable when a value is invalid.
 */
export function loadConfig(env: (name: string) => string | undefined): Config {
  const num = (name: string, fallback: number, min: number): number => {
    const raw = env(name);
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) {
      throw new RangeError(`${name} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
  const strategy = env("LOAD_BALANCING") || "least_loaded";
  if (!STRATEGIES.includes(strategy as LoadBalancingStrategy)) {
    throw new RangeError(`LOAD_BALANCING must be one of ${STRATEGIES.join(", ")}, got ${strategy}`);
  }
  const pooler = env("DATABASE_POOLER") || "none";
  if (pooler !== "none" && pooler !== "transaction") {
    throw new RangeError(`DATABASE_POOLER must be none or transaction, got ${pooler}`);
  }
  const logFormat = env("LOG_FORMAT") || "json";
  if (!LOG_FORMATS.includes(logFormat as LogFormat)) {
    throw new RangeError(`LOG_FORMAT must be one of ${LOG_FORMATS.join(", ")}, got ${logFormat}`);
  }
  const logLevel = env("LOG_LEVEL") || "info";
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new RangeError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got ${logLevel}`);
  }
  const cluster = (env("ORCHESTRATOR_CLUSTER") || "off").toLowerCase();
  if (!["on", "off", "true", "false", "1", "0"].includes(cluster)) {
    throw new RangeError(`ORCHESTRATOR_CLUSTER must be on or off, got ${cluster}`);
  }
  const clustered = ["on", "true", "1"].includes(cluster);
  if (clustered && !env("DATABASE_URL")) {
    throw new RangeError(
      "ORCHESTRATOR_CLUSTER=on needs DATABASE_URL: the embedded PGlite store is one process " +
        "per database, a single node",
    );
  }
  return {
    cluster: clustered,
    nodeId: env("NODE_ID") || null,
    host: env("ORCHESTRATOR_HOST") || "0.0.0.0",
    port: num("ORCHESTRATOR_PORT", 8765, 0),
    databaseUrl: env("DATABASE_URL") || null,
    databaseSchema: env("DATABASE_SCHEMA") || null,
    databasePooler: pooler,
    dataDir: env("DATA_DIR") || "./data",
    apiToken: env("ORCHESTRATOR_API_TOKEN") || null,
    robotToken: env("ORCHESTRATOR_ROBOT_TOKEN") || null,
    defaultJobTimeout: num("DEFAULT_JOB_TIMEOUT", 3600, 1),
    heartbeatInterval: num("HEARTBEAT_INTERVAL", 5, 0.05),
    heartbeatTimeout: num("HEARTBEAT_TIMEOUT", 30, 0.1),
    cancelGrace: num("CANCEL_GRACE", 30, 0),
    reconnectGrace: num("RECONNECT_GRACE", 15, 0),
    loadBalancing: strategy as LoadBalancingStrategy,
    sealInterval: num("SEAL_INTERVAL", 300, 0),
    retryableErrors: env("RETRYABLE_ERRORS")
      ? env("RETRYABLE_ERRORS")!.split(",").map((s) => s.trim()).filter(Boolean)
      : [...DEFAULT_RETRYABLE_ERRORS],
    drainTimeout: num("DRAIN_TIMEOUT", 30, 0),
    checkpointEvery: num("CHECKPOINT_EVERY", 100_000, 0),
    shutdownCheckpointTimeout: num("SHUTDOWN_CHECKPOINT_TIMEOUT", 10, 0),
    pingTimeout: num("PING_TIMEOUT", 20, 0),
    robotMessageRate: num("ROBOT_MESSAGE_RATE", 500, 1),
    logFormat: logFormat as LogFormat,
    logLevel: logLevel as LogLevel | "off",
    alerts: parseAlertConfig(env),
  };
}
