/**
 * Starts the orchestrator: `deno task start`.
 *
 * Reads the configuration from the environment (see README), opens the event store
 * (PostgreSQL when `DATABASE_URL` is set, else embedded PGlite in `DATA_DIR`), rebuilds
 * state from the log, and serves the API and the robot WebSocket.
 *
 * @module
 */
import { loadConfig, lockDataDir, resolveTokens } from "./config/mod.ts";
import { createLogger, defaultNodeId, Orchestrator } from "./engine/mod.ts";
import { createPostgresClient, openEventStore, type SqlClient } from "./events/mod.ts";
import { createApp, serve } from "./http/mod.ts";

async function main(): Promise<void> {
  const config = loadConfig((name) => Deno.env.get(name));
  if (!config.databaseUrl) await lockDataDir(config.dataDir);
  const tokens = await resolveTokens(config);
  const store = await openEventStore({
    databaseUrl: config.databaseUrl ?? undefined,
    dataDir: config.dataDir,
    schema: config.databaseSchema ?? undefined,
    pooler: config.databasePooler,
  });
  // Cluster mode: a small pool of its own for the leader lease and the node heartbeats, so
  // that a busy event store never delays a lease renewal.
  let clusterClient: SqlClient | null = null;
  if (config.cluster && config.databaseUrl) {
    clusterClient = await createPostgresClient({
      url: config.databaseUrl,
      schema: config.databaseSchema ?? undefined,
      max: 2,
      applicationName: "orchestrator-cluster",
      pooler: config.databasePooler,
    });
  }
  const nodeId = config.nodeId ?? defaultNodeId();
  const logger = createLogger({ format: config.logFormat, level: config.logLevel });
  const orchestrator = new Orchestrator({
    store,
    robotToken: tokens.robotToken,
    cluster: clusterClient ? { client: clusterClient, nodeId } : undefined,
    alerts: config.alerts,
    logger,
    config: {
      defaultJobTimeout: config.defaultJobTimeout,
      heartbeatInterval: config.heartbeatInterval,
      heartbeatTimeout: config.heartbeatTimeout,
      cancelGrace: config.cancelGrace,
      reconnectGrace: config.reconnectGrace,
      loadBalancing: config.loadBalancing,
      sealInterval: config.sealInterval,
      retryableErrors: config.retryableErrors,
      drainTimeout: config.drainTimeout,
      checkpointEvery: config.checkpointEvery,
      shutdownCheckpointTimeout: config.shutdownCheckpointTimeout,
      pingTimeout: config.pingTimeout,
      robotMessageRate: config.robotMessageRate,
    },
  });
  const started = performance.now();
  const app = createApp({ orchestrator, apiToken: tokens.apiToken, logger });
  const abort = new AbortController();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = serve({
      app,
      orchestrator,
      apiToken: tokens.apiToken,
      hostname: config.host,
      port: config.port,
      signal: abort.signal,
      onListen: (addr) => {
        const where = config.databaseUrl
          ? "PostgreSQL (DATABASE_URL)"
          : `PGlite in ${config.dataDir}`;
        console.log(
          `orchestrator listening on http://${addr.hostname}:${addr.port} (store: ${where}); ` +
            `/healthz answers 503 until the log is replayed`,
        );
        console.log(`robots connect to ws://${addr.hostname}:${addr.port}/ws/robot`);
        if (tokens.file) console.log(`API and robot tokens are in ${tokens.file}`);
        if (clusterClient) console.log(`cluster mode: node ${nodeId}`);
      },
    });
  } catch (error) {
    // Another process holds the port: one clear line (printed below) rather than Deno's
    // "Address already in use", and the store closed first.
    if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    await store.close().catch(() => {});
    await clusterClient?.close().catch(() => {});
    throw new Error(
      `orchestrator: port ${config.port} is already in use (set ORCHESTRATOR_PORT to another port)`,
      { cause: error },
    );
  }
  // Serve first (/healthz answers 503 meanwhile), then replay the log.
  await orchestrator.start();
  const report = orchestrator.startReport;
  console.log(
    `log replayed to position ${orchestrator.core.position} in ` +
      `${Math.round(performance.now() - started)} ms (${report.eventsFolded} events folded` +
      (report.restoredPosition > 0
        ? ` after the start-up checkpoint at ${report.restoredPosition})`
        : ")") +
      "; ready",
  );
  // SIGTERM or SIGINT: drain (running jobs get DRAIN_TIMEOUT seconds to finish, the rest
  // are requeued), then close; a second signal ends the wait at once.
  const force = new AbortController();
  let stopping = false;
  const shutdown = async () => {
    if (stopping) {
      console.log("second signal: requeueing running jobs now");
      force.abort();
      return;
    }
    stopping = true;
    console.log("shutting down");
    await orchestrator.drain({ signal: force.signal });
    await store.seal().catch(() => {});
    abort.abort();
    await server.finished;
    // Nothing appends any more: keep the state for the next start (SHUTDOWN_CHECKPOINT_TIMEOUT).
    await orchestrator.writeShutdownCheckpoint()
      .catch((error) => console.error("shutdown checkpoint not written:", error));
    await store.close();
    await clusterClient?.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
}

if (import.meta.main) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  });
}
