/**
 * Variable nodes.
 *
 * @module
 */

import type { NodeContext, NodeOutcome } from "./node_handler.ts";

function variableName(ctx: NodeContext): string {
  const name = ctx.param("variable_name") ?? ctx.param("name");
  if (typeof name !== "string" || name.trim() === "") {
    throw new TypeError(
      `${ctx.nodeType} "${ctx.nodeId}" needs a variable_name, got ${JSON.stringify(name)}`,
    );
  }
  return name.trim();
}

/**
 * `SetVariableNode`: config `variable_name`, `value` (placeholders substituted; a whole
 * placeholder keeps the value's type). Output `value`.
 */
export function setVariableNode(ctx: NodeContext): NodeOutcome {
  const name = variableName(ctx);
  const value = ctx.param("value") ?? null;
  ctx.variables.set(name, value);
  return { outputs: { value } };
}

/**
 * `GetVariableNode`: config `variable_name`, optional `default_value`. Output `value`.
 */
export function getVariableNode(ctx: NodeContext): NodeOutcome {
  const name = variableName(ctx);
  const value = ctx.variables.has(name)
    ? ctx.variables.get(name)
    : (ctx.param("default_value") ?? null);
  return { outputs: { value } };
}
