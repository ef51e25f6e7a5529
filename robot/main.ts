/**
 * The robot's command line: `deno task robot --url ws://HOST:PORT/ws/robot --token T --name N`.
 *
 * Writes one line per finished job to stdout and diagnostics to stderr. SIGINT or SIGTERM
 * stops it gracefully (running jobs finish first); a second signal cancels them.
 *
 * @module
 */

import { CliUsageError, parseRobotArgs, USAGE } from "./cli_args.ts";
import { RobotClient } from "./robot_client.ts";
import type { RobotLogger, RobotMetrics } from "./robot_client_options.ts";

/** A logger writing `LEVEL message` lines with a UTC timestamp to stderr. */
export const stderrLogger: RobotLogger = (() => {
  const line = (level: string) => (message: string, details?: Record<string, unknown>) =>
    console.error(
      `${new Date().toISOString()} ${level} ${message}${
        details ? ` ${JSON.stringify(details)}` : ""
      }`,
    );
  return { debug: () => {}, info: line("INFO"), warn: line("WARN"), error: line("ERROR") };
})();

/** Load of this host (needs `--allow-sys`): CPU from the 1-minute load average, memory used. */
export function systemMetrics(): RobotMetrics {
  const metrics: RobotMetrics = {};
  const cpus = navigator.hardwareConcurrency || 1;
  metrics.cpu_percent = Math.min(100, Math.round((Deno.loadavg()[0] / cpus) * 1000) / 10);
  const mem = Deno.systemMemoryInfo();
  if (mem.total > 0) {
    metrics.memory_percent = Math.round(((mem.total - mem.available) / mem.total) * 1000) / 10;
  }
  return metrics;
}

/**
 * Runs the robot until it stops.
 *
 * @param args Command-line arguments.
 * @returns The process exit code: 0 after a normal stop, 1 when registration was refused,
 *   2 on a usage error.
 */
export async function main(args: string[]): Promise<number> {
  let config;
  try {
    config = parseRobotArgs(args);
  } catch (e) {
    if (!(e instanceof CliUsageError)) throw e;
    console.error(`error: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (config.help) {
    console.log(USAGE);
    return 0;
  }
  const robot = new RobotClient({
    url: config.url,
    urls: config.urls,
    token: config.token,
    name: config.name,
    robotId: config.robotId,
    capabilities: config.capabilities,
    tags: config.tags,
    maxConcurrentJobs: config.maxConcurrentJobs,
    environment: config.environment,
    logger: stderrLogger,
    metrics: systemMetrics,
  });
  robot.on("job_finished", ({ jobId, workflowName, result }) => {
    const error = result.error ? ` ${result.error.type}: ${result.error.message}` : "";
    console.log(
      `${new Date().toISOString()} job ${jobId} (${
        workflowName || "unnamed"
      }) ${result.status} in ${result.execution_time.toFixed(3)} s${error}`,
    );
  });

  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals === 1) {
      stderrLogger.info(
        `Stopping: waiting for ${robot.activeJobIds.length} running job(s); signal again to cancel them`,
      );
      void robot.shutdown({ graceful: true, reason: "robot process stopping" });
    } else {
      void robot.close("robot process interrupted");
    }
  };
  const stopSignals = ["SIGINT", "SIGTERM"] as const;
  for (const s of stopSignals) Deno.addSignalListener(s, onSignal);
  try {
    await robot.start();
    stderrLogger.info(`Robot ${robot.robotId} online at ${config.url}`);
  } catch (e) {
    stderrLogger.error((e as Error).message);
  }
  const { reason } = await robot.closed;
  for (const s of stopSignals) Deno.removeSignalListener(s, onSignal);
  return reason.startsWith("registration refused") ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
