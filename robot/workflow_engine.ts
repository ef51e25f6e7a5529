/**
 * The workflow engine: runs a CasareRPA workflow and returns the protocol's job result.
 *
 * Pure: no I/O except through the callbacks; time and sleeping come from the injected
 * clock; cancellation from the `AbortSignal`.
 *
 * @module
 */

import { type Clock, systemClock } from "./clock.ts";
import { createConditionEvaluator } from "./condition_expression.ts";
import type {
  JobError,
  JobProgress,
  JobResultLike,
  LogEntry,
  LogLevel,
  NodeResult,
} from "./job_result.ts";
import { createDefaultNodeRegistry } from "./nodes/default_node_registry.ts";
import {
  type Arrival,
  findHandler,
  type NodeContext,
  type NodeOutcome,
  type NodeRegistry,
} from "./nodes/node_handler.ts";
import { getPath, type LookupResult, resolvePlaceholders } from "./placeholders.ts";
import { parseWorkflow, type WorkflowGraph } from "./workflow_content.ts";
import {
  ExpressionError,
  IterationLimitError,
  JobCancelledError,
  UnsupportedNodeError,
  WorkflowTimeoutError,
  WorkflowValidationError,
} from "./workflow_errors.ts";

/** Options of {@linkcode executeWorkflow}. */
export interface ExecuteWorkflowOptions {
  /** Variables of the job; they override the workflow's own `variables`. @default {} */
  variables?: Record<string, unknown>;
  /** Aborting it stops the run before the next node: the result is `cancelled`. */
  signal?: AbortSignal;
  /** Called with each log entry as it is written. */
  onLog?: (entry: LogEntry) => void;
  /** Called before each node runs. */
  onProgress?: (progress: JobProgress) => void;
  /** Source of time and sleeping. @default systemClock */
  clock?: Clock;
  /** Node handlers by type. @default createDefaultNodeRegistry() */
  nodes?: NodeRegistry;
  /** Iteration limit of one loop without its own `max_iterations`. @default 10_000 */
  maxLoopIterations?: number;
  /** Limit of node executions in one run (guards against any endless cycle). @default 1_000_000 */
  maxSteps?: number;
  /**
   * Run timeout in seconds (e.g. the job's `timeout`); the smaller of this and the
   * workflow's `settings.timeout` applies. Checked between nodes.
   */
  timeoutSeconds?: number;
}

/** A function with the shape of {@linkcode executeWorkflow} (the robot's executor). */
export type WorkflowExecutor = (
  content: unknown,
  options: ExecuteWorkflowOptions,
) => Promise<JobResultLike>;

const YIELD_EVERY_MS = 10;

/** Errors that end the run even when `stop_on_error` is false. */
const isFatal = (e: unknown): boolean =>
  e instanceof IterationLimitError || e instanceof JobCancelledError ||
  e instanceof WorkflowTimeoutError || e instanceof WorkflowValidationError;

/** Errors the engine raises on purpose; their message is the whole story. */
const isWorkflowError = (e: unknown): boolean =>
  isFatal(e) || e instanceof UnsupportedNodeError || e instanceof ExpressionError;

const errorMessage = (e: unknown): string => e instanceof Error ? e.message : String(e);

/**
 * Runs a workflow to its end and reports what happened. Never throws: every failure is in
 * the result (`status: "failed"` with `error.type` naming the error class, e.g.
 * `UnsupportedNodeError`, `IterationLimitError`, `ExpressionError`).
 *
 * Execution starts at the nodes without an incoming exec connection and follows exec
 * connections (`exec_out`, or the port a control node picks: `true`/`false`, `body`/
 * `completed`, `case_N`/`default`). Before anything runs, every node type is checked: an
 * unsupported one fails the run with an `UnsupportedNodeError` naming its type and id.
 * With `settings.stop_on_error: false`, a failing node is recorded and the run continues
 * at its `exec_out`.
 *
 * @param content Workflow JSON, as an object or a JSON string.
 * @param options Variables, cancellation, callbacks, clock and limits.
 * @returns The job result: status, outputs (final variables), logs, execution time in
 *   seconds, per-node results and the error, if any.
 * @example Run a one-node workflow
 * ```ts
 * import { executeWorkflow } from "./workflow_engine.ts";
 * const result = await executeWorkflow({
 *   nodes: { hi: { node_id: "hi", node_type: "LogNode", config: { message: "Hi {{who}}" } } },
 *   connections: [],
 * }, { variables: { who: "Ada" } });
 * console.log(result.status, result.logs[0].message); // completed Hi Ada
 * ```
 */
export async function executeWorkflow(
  content: unknown,
  options: ExecuteWorkflowOptions = {},
): Promise<JobResultLike> {
  const clock = options.clock ?? systemClock;
  const signal = options.signal ?? new AbortController().signal;
  const startedAt = clock.now();
  const logs: LogEntry[] = [];
  const nodeResults: Record<string, NodeResult> = {};
  const variables = new Map<string, unknown>();
  let failedNode: string | undefined;

  const log = (level: LogLevel, message: string, nodeId?: string) => {
    const entry: LogEntry = { timestamp: new Date(clock.now()).toISOString(), level, message };
    if (nodeId !== undefined) entry.node_id = nodeId;
    logs.push(entry);
    options.onLog?.(entry);
  };
  const finish = (status: JobResultLike["status"], error?: JobError): JobResultLike => ({
    status,
    outputs: Object.fromEntries(variables),
    logs,
    execution_time: (clock.now() - startedAt) / 1000,
    node_results: nodeResults,
    ...(error ? { error } : {}),
  });

  try {
    const graph = parseWorkflow(content);
    const registry = options.nodes ?? createDefaultNodeRegistry();
    const unsupported = [...graph.nodes.values()]
      .filter((n) => !findHandler(registry, n.node_type))
      .map((n) => ({ nodeId: n.node_id, nodeType: n.node_type }));
    if (unsupported.length > 0) throw new UnsupportedNodeError(unsupported);
    for (const [k, v] of Object.entries(graph.variables)) variables.set(k, v);
    for (const [k, v] of Object.entries(options.variables ?? {})) variables.set(k, v);

    await run(graph, {
      registry,
      clock,
      signal,
      variables,
      nodeResults,
      log,
      onProgress: options.onProgress,
      maxLoopIterations: options.maxLoopIterations ?? 10_000,
      maxSteps: options.maxSteps ?? 1_000_000,
      timeoutSeconds: minDefined(graph.settings.timeout, options.timeoutSeconds),
      startedAt,
      onNodeFailed: (id) => (failedNode = id),
    });
    options.onProgress?.({ progress: 100, message: "Completed" });
    return finish("completed");
  } catch (e) {
    const cancelled = signal.aborted || e instanceof JobCancelledError;
    const err = cancelled && !(e instanceof JobCancelledError)
      ? new JobCancelledError(signal.reason)
      : e;
    const nodeId = (err as { nodeId?: unknown }).nodeId;
    const error: JobError = {
      type: err instanceof Error ? err.name : "Error",
      message: errorMessage(err),
    };
    const at = typeof nodeId === "string" ? nodeId : failedNode;
    if (at !== undefined) error.node_id = at;
    if (err instanceof Error && err.stack && !cancelled && !isWorkflowError(err)) {
      error.stack = err.stack; // an unexpected failure: the stack helps; ours say it all
    }
    log(cancelled ? "warning" : "error", error.message, at);
    return finish(cancelled ? "cancelled" : "failed", error);
  }
}

function minDefined(a?: number, b?: number): number | undefined {
  const values = [a, b].filter((x): x is number => typeof x === "number" && x > 0);
  return values.length ? Math.min(...values) : undefined;
}

interface RunState {
  registry: NodeRegistry;
  clock: Clock;
  signal: AbortSignal;
  variables: Map<string, unknown>;
  nodeResults: Record<string, NodeResult>;
  log: (level: LogLevel, message: string, nodeId?: string) => void;
  onProgress?: (progress: JobProgress) => void;
  maxLoopIterations: number;
  maxSteps: number;
  timeoutSeconds?: number;
  startedAt: number;
  onNodeFailed: (nodeId: string) => void;
}

async function run(graph: WorkflowGraph, s: RunState): Promise<void> {
  const outputs = new Map<string, Record<string, unknown>>();
  const loops = new Map<string, unknown>();
  const ran = new Set<string>();
  const warned = new Set<string>();
  const evaluator = createConditionEvaluator();
  const stack: Array<{ nodeId: string; arrival: Arrival }> = graph.startNodes
    .map((nodeId) => ({ nodeId, arrival: "exec" as Arrival }))
    .reverse();

  const lookup = (path: readonly string[]): LookupResult => {
    const [head, port, ...rest] = path;
    const out = port !== undefined ? outputs.get(head) : undefined;
    if (out) {
      if (Object.hasOwn(out, port)) return getPath(out[port], rest);
      if (port === "output") {
        const first = Object.keys(out)[0];
        if (first !== undefined) return getPath(out[first], rest);
      }
    }
    if (s.variables.has(head)) return getPath(s.variables.get(head), path.slice(1));
    return { found: false };
  };

  let steps = 0;
  let lastYield = s.clock.now();
  while (stack.length > 0) {
    if (s.signal.aborted) throw new JobCancelledError(s.signal.reason);
    const { nodeId, arrival } = stack.pop()!;
    if (++steps > s.maxSteps) {
      throw new IterationLimitError(
        `Workflow exceeded the limit of ${s.maxSteps} node executions at node "${nodeId}"; it probably loops forever`,
        { nodeId, limit: s.maxSteps },
      );
    }
    const now = s.clock.now();
    if (s.timeoutSeconds !== undefined && now - s.startedAt > s.timeoutSeconds * 1000) {
      throw new WorkflowTimeoutError(s.timeoutSeconds);
    }
    if (now - lastYield >= YIELD_EVERY_MS) {
      await s.clock.sleep(0, s.signal);
      lastYield = s.clock.now();
    }
    const spec = graph.nodes.get(nodeId)!;
    s.onProgress?.({
      progress: Math.floor((ran.size / graph.nodes.size) * 100),
      current_node: nodeId,
      message: `Running ${spec.node_type} "${nodeId}"`,
    });

    const dataIn = graph.dataIn.get(nodeId);
    const dataValue = (key: string): LookupResult => {
      const src = dataIn?.get(key);
      return src ? lookup([src.node, src.port]) : { found: false };
    };
    const ctx: NodeContext = {
      nodeId,
      nodeType: spec.node_type,
      config: spec.config,
      arrival,
      variables: s.variables,
      signal: s.signal,
      clock: s.clock,
      maxLoopIterations: s.maxLoopIterations,
      param: (key) => {
        const d = dataValue(key);
        if (d.found) return d.value;
        if (!Object.hasOwn(spec.config, key)) return undefined;
        return resolvePlaceholders(spec.config[key], lookup, {
          onUnresolved: (p) => {
            if (warned.has(`${nodeId}\u0000${p}`)) return;
            warned.add(`${nodeId}\u0000${p}`);
            s.log(
              "warning",
              `Placeholder ${p} in "${key}" matches no variable or node output`,
              nodeId,
            );
          },
        });
      },
      has: (key) => dataValue(key).found || Object.hasOwn(spec.config, key),
      evaluate: (key) => {
        const d = dataValue(key);
        if (d.found) return d.value;
        return evaluator.evaluate(spec.config[key], lookup, s.variables);
      },
      log: (level, message) => s.log(level, message, nodeId),
      hasExecPort: (port) => (graph.execOut.get(nodeId)?.get(port)?.length ?? 0) > 0,
      getLoop: <T>(id: string) => loops.get(id) as T | undefined,
      setLoop: (id, state) => {
        loops.delete(id);
        if (state !== undefined) loops.set(id, state);
      },
      activeLoops: () => [...loops.keys()],
      nodesOfType: (types) =>
        [...graph.nodes.values()].filter((n) => types.includes(n.node_type)).map((n) => n.node_id),
    };

    const outcome = await runNode(ctx, s, graph.settings, outputs);
    ran.add(nodeId);
    if (outcome.jumpTo !== undefined) {
      if (!graph.nodes.has(outcome.jumpTo)) {
        throw new WorkflowValidationError(
          `Node "${nodeId}" jumps to unknown node "${outcome.jumpTo}"`,
          { nodeId },
        );
      }
      stack.push({ nodeId: outcome.jumpTo, arrival: "loop_back" });
      continue;
    }
    const ports = graph.execOut.get(nodeId);
    const targets = (outcome.next ?? ["exec_out"]).flatMap((p) => ports?.get(p) ?? []);
    for (let i = targets.length - 1; i >= 0; i--) {
      stack.push({ nodeId: targets[i], arrival: "exec" });
    }
  }
}

async function runNode(
  ctx: NodeContext,
  s: RunState,
  settings: WorkflowGraph["settings"],
  outputs: Map<string, Record<string, unknown>>,
): Promise<NodeOutcome> {
  const handler = findHandler(s.registry, ctx.nodeType)!;
  const result: NodeResult = s.nodeResults[ctx.nodeId] ?? { status: "completed", duration_ms: 0 };
  s.nodeResults[ctx.nodeId] = result;
  for (let attempt = 0;; attempt++) {
    const t0 = s.clock.now();
    try {
      const outcome = await handler(ctx);
      const out = outcome.outputs ?? {};
      result.duration_ms += s.clock.now() - t0;
      result.status = "completed";
      result.output = out;
      delete result.error;
      outputs.set(ctx.nodeId, out);
      return outcome;
    } catch (e) {
      result.duration_ms += s.clock.now() - t0;
      const fatal = isFatal(e) || s.signal.aborted;
      if (!fatal && attempt < settings.retry_count) {
        s.log(
          "warning",
          `Attempt ${attempt + 1} of ${settings.retry_count + 1} failed: ${
            errorMessage(e)
          }; retrying`,
          ctx.nodeId,
        );
        continue;
      }
      result.status = "failed";
      result.error = errorMessage(e);
      s.onNodeFailed(ctx.nodeId);
      if (fatal || settings.stop_on_error) throw e;
      s.log("error", `${errorMessage(e)} (continuing: stop_on_error is false)`, ctx.nodeId);
      return { outputs: {} };
    }
  }
}
