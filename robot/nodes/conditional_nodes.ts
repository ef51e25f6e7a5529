/**
 * `IfNode`, `SwitchNode` and `MergeNode` (CasareRPA's `control_flow/conditionals.py`).
 *
 * @module
 */

import { isTruthy } from "../condition_expression.ts";
import { formatValue } from "../placeholders.ts";
import type { NodeContext, NodeOutcome } from "./node_handler.ts";

/**
 * `IfNode`: evaluates `condition` (or `expression`) — a CEL expression with placeholders,
 * or a plain value — and follows port `true` or `false`. A connected `condition` data input
 * wins over the config. Output `result` (boolean).
 *
 * Unlike CasareRPA, an invalid expression fails the node instead of counting as false.
 */
export function ifNode(ctx: NodeContext): NodeOutcome {
  const key = ctx.has("condition") || !ctx.has("expression") ? "condition" : "expression";
  const result = isTruthy(ctx.evaluate(key));
  return { outputs: { result }, next: [result ? "true" : "false"] };
}

/**
 * `SwitchNode`: compares the text of `value` (or of the evaluated `expression`) with each
 * entry of `cases` and follows the first match's port: `case_N` (N = the case's 0-based
 * index) or, as CasareRPA names them, `case_<case value>`; else `default`.
 * Outputs `matched_case` (the case, or `"default"`) and `value`.
 */
export function switchNode(ctx: NodeContext): NodeOutcome {
  const value = ctx.has("value") ? ctx.param("value") : ctx.evaluate("expression");
  const cases = ctx.param("cases") ?? [];
  if (!Array.isArray(cases)) {
    throw new TypeError(
      `SwitchNode "${ctx.nodeId}": cases must be a list, got ${JSON.stringify(cases)}`,
    );
  }
  const text = value === null || value === undefined ? "" : formatValue(value);
  const index = cases.findIndex((c) => formatValue(c) === text);
  if (index < 0) return { outputs: { matched_case: "default", value }, next: ["default"] };
  const byValue = `case_${formatValue(cases[index])}`;
  const port = ctx.hasExecPort(`case_${index}`) || !ctx.hasExecPort(byValue)
    ? `case_${index}`
    : byValue;
  return { outputs: { matched_case: cases[index], value }, next: [port] };
}

/** `MergeNode`: joins branches; passes execution through to `exec_out`. */
export function mergeNode(): NodeOutcome {
  return { outputs: {} };
}
