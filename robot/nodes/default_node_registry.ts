/**
 * The node types this robot implements.
 *
 * @module
 */

import { logNode, passThroughNode, waitNode } from "./basic_nodes.ts";
import { ifNode, mergeNode, switchNode } from "./conditional_nodes.ts";
import { concatenateNode, createDictNode, formatStringNode } from "./data_nodes.ts";
import {
  breakNode,
  continueNode,
  forLoopEndNode,
  forLoopStartNode,
  whileLoopEndNode,
  whileLoopStartNode,
} from "./loop_nodes.ts";
import { comparisonNode, mathOperationNode } from "./math_nodes.ts";
import type { NodeHandler, NodeRegistry } from "./node_handler.ts";
import { getVariableNode, setVariableNode } from "./variable_nodes.ts";

/**
 * Creates the registry of built-in node handlers, keyed by CasareRPA node type
 * (`SetVariableNode`, …; lookups also accept the type without `Node`).
 *
 * @returns A new map; callers may add or replace handlers in their copy.
 * @example Add a custom node type
 * ```ts
 * import { createDefaultNodeRegistry } from "./default_node_registry.ts";
 * const nodes = createDefaultNodeRegistry();
 * nodes.set("EchoNode", (ctx) => ({ outputs: { text: ctx.param("text") } }));
 * ```
 */
export function createDefaultNodeRegistry(): Map<string, NodeHandler> {
  return new Map<string, NodeHandler>([
    ["StartNode", passThroughNode],
    ["EndNode", passThroughNode],
    ["LogNode", logNode],
    ["WaitNode", waitNode],
    ["SetVariableNode", setVariableNode],
    ["GetVariableNode", getVariableNode],
    ["MathOperationNode", mathOperationNode],
    ["ComparisonNode", comparisonNode],
    ["CreateDictNode", createDictNode],
    ["FormatStringNode", formatStringNode],
    ["ConcatenateNode", concatenateNode],
    ["IfNode", ifNode],
    ["SwitchNode", switchNode],
    ["MergeNode", mergeNode],
    ["ForLoopStartNode", forLoopStartNode],
    ["ForLoopEndNode", forLoopEndNode],
    ["WhileLoopStartNode", whileLoopStartNode],
    ["WhileLoopEndNode", whileLoopEndNode],
    ["BreakNode", breakNode],
    ["ContinueNode", continueNode],
  ]);
}

/** The node types of {@linkcode createDefaultNodeRegistry}, sorted. */
export const SUPPORTED_NODE_TYPES: readonly string[] = [...createDefaultNodeRegistry().keys()]
  .sort();

export type { NodeRegistry };
