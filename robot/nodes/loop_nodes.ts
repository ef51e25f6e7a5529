/**
 * Loop nodes (CasareRPA's `control_flow/loops.py`): a loop is a start node (`ForLoopStart`
 * or `WhileLoopStart`) whose `body` port leads to nodes ending in the paired end node; the
 * end jumps back to the start, which follows `completed` when the loop is over. `Break`
 * and `Continue` jump back to the start too.
 *
 * @module
 */

import { isTruthy } from "../condition_expression.ts";
import { IterationLimitError, WorkflowValidationError } from "../workflow_errors.ts";
import { type NodeContext, type NodeOutcome, numberParam } from "./node_handler.ts";

const FOR_START = ["ForLoopStartNode", "ForLoopStart"];
const WHILE_START = ["WhileLoopStartNode", "WhileLoopStart"];

interface ForState {
  items: unknown[];
  keys?: string[];
  index: number;
  breakRequested?: boolean;
  last: Record<string, unknown>;
}

interface WhileState {
  iteration: number;
  breakRequested?: boolean;
}

function forItems(ctx: NodeContext): { items: unknown[]; keys?: string[] } {
  const mode = String(ctx.param("mode") ?? "items");
  const raw = mode === "range" ? undefined : ctx.param("items");
  if (raw === undefined || raw === null) {
    const listVar = ctx.param("list_var");
    if (mode !== "range" && typeof listVar === "string" && ctx.variables.has(listVar)) {
      return fromCollection(ctx, ctx.variables.get(listVar));
    }
    const start = numberParam(ctx, "start", 0);
    const end = numberParam(ctx, "end", 10);
    const step = numberParam(ctx, "step", 1);
    if (step <= 0) throw new RangeError(`ForLoopStartNode "${ctx.nodeId}": step must be > 0`);
    const items: number[] = [];
    for (let i = start; i < end; i += step) items.push(i);
    return { items };
  }
  return fromCollection(ctx, raw);
}

function fromCollection(ctx: NodeContext, raw: unknown): { items: unknown[]; keys?: string[] } {
  if (typeof raw === "string" && /^\{\{.*\}\}$/.test(raw.trim())) {
    throw new WorkflowValidationError(
      `ForLoopStartNode "${ctx.nodeId}": items ${raw} refers to nothing known`,
      { nodeId: ctx.nodeId },
    );
  }
  if (Array.isArray(raw)) return { items: [...raw] };
  if (typeof raw === "string") return { items: [...raw] };
  if (typeof raw === "object" && raw !== null) {
    const keys = Object.keys(raw);
    return { items: keys.map((k) => (raw as Record<string, unknown>)[k]), keys };
  }
  return { items: [raw] };
}

function pairedStart(ctx: NodeContext, key: string, types: readonly string[]): string {
  const configured = ctx.param(key);
  if (typeof configured === "string" && configured !== "") return configured;
  const candidates = ctx.nodesOfType(types);
  if (candidates.length === 1) return candidates[0];
  throw new WorkflowValidationError(
    `${ctx.nodeType} "${ctx.nodeId}" has no ${key} and the workflow has ${candidates.length} ${
      types[0]
    }s to pair it with`,
    { nodeId: ctx.nodeId },
  );
}

/**
 * `ForLoopStartNode`: iterates `items` (a list, a dict's values, a string's characters, or
 * one value) or, in `mode: "range"` or without items, `start`…`end` by `step`. Each
 * iteration follows `body`; then `completed`. Outputs `current_item`, `current_index`
 * (alias `index`), `current_key` (dict keys) and `iterations`. Sets the variable named by
 * `item_var` (default `item`) and `<item_var>_index`.
 */
export function forLoopStartNode(ctx: NodeContext): NodeOutcome {
  let state = ctx.arrival === "loop_back" ? ctx.getLoop<ForState>(ctx.nodeId) : undefined;
  if (!state) {
    state = { ...forItems(ctx), index: 0, last: {} };
    ctx.setLoop(ctx.nodeId, state);
  }
  if (state.breakRequested || state.index >= state.items.length) {
    ctx.setLoop(ctx.nodeId, undefined);
    return { outputs: { ...state.last, iterations: state.index }, next: ["completed"] };
  }
  const index = state.index++;
  const item = state.items[index];
  const key = state.keys?.[index] ?? null;
  const itemVar = ctx.param("item_var") ?? "item";
  if (typeof itemVar === "string" && itemVar !== "") {
    ctx.variables.set(itemVar, item);
    ctx.variables.set(`${itemVar}_index`, index);
    if (key !== null) ctx.variables.set(`${itemVar}_key`, key);
  }
  state.last = { current_item: item, current_index: index, index, current_key: key };
  return { outputs: { ...state.last, iterations: index }, next: ["body"] };
}

/** `ForLoopEndNode`: jumps back to `paired_start_id` while that loop is active. */
export function forLoopEndNode(ctx: NodeContext): NodeOutcome {
  const start = pairedStart(ctx, "paired_start_id", FOR_START);
  return ctx.getLoop(start) ? { jumpTo: start } : { outputs: {} };
}

/**
 * `WhileLoopStartNode`: evaluates `condition` (or `expression`) before each iteration;
 * follows `body` while it is true, then `completed`. More than `max_iterations` iterations
 * (default: the engine's `maxLoopIterations`) fail the run with an
 * {@linkcode IterationLimitError}. Output `current_iteration` (0-based).
 */
export function whileLoopStartNode(ctx: NodeContext): NodeOutcome {
  let state = ctx.arrival === "loop_back" ? ctx.getLoop<WhileState>(ctx.nodeId) : undefined;
  if (!state) {
    state = { iteration: 0 };
    ctx.setLoop(ctx.nodeId, state);
  }
  const done = (): { outputs: Record<string, unknown>; next: string[] } => {
    ctx.setLoop(ctx.nodeId, undefined);
    return { outputs: { iterations: state.iteration }, next: ["completed"] };
  };
  if (state.breakRequested) return done();
  const key = ctx.has("condition") || !ctx.has("expression") ? "condition" : "expression";
  if (!isTruthy(ctx.evaluate(key))) return done();
  const limit = ctx.has("max_iterations")
    ? numberParam(ctx, "max_iterations")
    : ctx.maxLoopIterations;
  if (state.iteration >= limit) {
    ctx.setLoop(ctx.nodeId, undefined);
    throw new IterationLimitError(
      `WhileLoopStartNode "${ctx.nodeId}" exceeded its limit of ${limit} iterations; its condition never became false`,
      { nodeId: ctx.nodeId, limit },
    );
  }
  const current = state.iteration++;
  return { outputs: { current_iteration: current, iterations: current }, next: ["body"] };
}

/** `WhileLoopEndNode`: jumps back to `paired_start_id` while that loop is active. */
export function whileLoopEndNode(ctx: NodeContext): NodeOutcome {
  const start = pairedStart(ctx, "paired_start_id", WHILE_START);
  return ctx.getLoop(start) ? { jumpTo: start } : { outputs: {} };
}

function targetLoop(ctx: NodeContext): string | undefined {
  const configured = ctx.param("paired_loop_start_id");
  if (typeof configured === "string" && configured !== "") return configured;
  return ctx.activeLoops().at(-1);
}

/**
 * `BreakNode`: ends the loop `paired_loop_start_id` (default: the innermost active loop);
 * its start then follows `completed`. Outside a loop it passes through.
 */
export function breakNode(ctx: NodeContext): NodeOutcome {
  const start = targetLoop(ctx);
  const state = start ? ctx.getLoop<{ breakRequested?: boolean }>(start) : undefined;
  if (!start || !state) return { outputs: {} };
  state.breakRequested = true;
  return { jumpTo: start };
}

/**
 * `ContinueNode`: skips to the next iteration of `paired_loop_start_id` (default: the
 * innermost active loop). Outside a loop it passes through.
 */
export function continueNode(ctx: NodeContext): NodeOutcome {
  const start = targetLoop(ctx);
  return start && ctx.getLoop(start) ? { jumpTo: start } : { outputs: {} };
}
