/**
 * Start, End, Log and Wait nodes.
 *
 * @module
 */

import type { LogLevel } from "../job_result.ts";
import { formatValue } from "../placeholders.ts";
import { type NodeContext, type NodeOutcome, numberParam } from "./node_handler.ts";

const LEVELS: Record<string, LogLevel> = {
  debug: "debug",
  info: "info",
  information: "info",
  warn: "warning",
  warning: "warning",
  error: "error",
  critical: "critical",
};

/** `StartNode` / `EndNode`: pass-through markers. */
export function passThroughNode(): NodeOutcome {
  return { outputs: {} };
}

/**
 * `LogNode`: config `message` (placeholders substituted), `level` (`debug`, `info`,
 * `warning`, `error`, `critical`; default `info`). Output `message`.
 */
export function logNode(ctx: NodeContext): NodeOutcome {
  const message = formatValue(ctx.param("message") ?? "");
  const rawLevel = String(ctx.param("level") ?? "info").toLowerCase();
  const level = LEVELS[rawLevel];
  if (!level) {
    throw new TypeError(
      `LogNode "${ctx.nodeId}": unknown level ${
        JSON.stringify(rawLevel)
      } (use debug, info, warning, error or critical)`,
    );
  }
  ctx.log(level, message);
  return { outputs: { message } };
}

/**
 * `WaitNode`: waits `duration_ms` milliseconds (or `duration` / `seconds` seconds) on the
 * run's clock; cancellation interrupts it. Output `waited_ms`.
 */
export async function waitNode(ctx: NodeContext): Promise<NodeOutcome> {
  const ms = ctx.has("duration_ms")
    ? numberParam(ctx, "duration_ms")
    : numberParam(ctx, ctx.has("duration") ? "duration" : "seconds", 0) * 1000;
  if (ms < 0) throw new RangeError(`WaitNode "${ctx.nodeId}": duration must be ≥ 0, got ${ms} ms`);
  await ctx.clock.sleep(ms, ctx.signal);
  return { outputs: { waited_ms: ms } };
}
