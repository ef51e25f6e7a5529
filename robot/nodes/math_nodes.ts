/**
 * `MathOperationNode` and `ComparisonNode` (CasareRPA's `math_nodes.py` semantics, with
 * JavaScript numbers: `50 / 2` is `25`, not `25.0`).
 *
 * @module
 */

import { type NodeContext, type NodeOutcome, numberParam, stringParam } from "./node_handler.ts";

type Binary = (a: number, b: number) => number;

const BINARY: Record<string, Binary> = {
  add: (a, b) => a + b,
  subtract: (a, b) => a - b,
  multiply: (a, b) => a * b,
  divide: (a, b) => {
    if (b === 0) throw new RangeError("Division by zero");
    return a / b;
  },
  floor_divide: (a, b) => {
    if (b === 0) throw new RangeError("Division by zero");
    return Math.floor(a / b);
  },
  modulo: (a, b) => {
    if (b === 0) throw new RangeError("Modulo by zero");
    return a - b * Math.floor(a / b); // Python's sign rule
  },
  power: (a, b) => a ** b,
  min: Math.min,
  max: Math.max,
  log: (a, b) => (b === 0 ? Math.log(a) : Math.log(a) / Math.log(b)),
};

const UNARY: Record<string, (a: number) => number> = {
  abs: Math.abs,
  sqrt: Math.sqrt,
  floor: Math.floor,
  ceil: Math.ceil,
  round: Math.round,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  log10: Math.log10,
  exp: Math.exp,
  negate: (a) => -a,
};

const ALIASES: Record<string, string> = {
  "+": "add",
  "-": "subtract",
  "*": "multiply",
  "/": "divide",
  "//": "floor_divide",
  "%": "modulo",
  "**": "power",
  "^": "power",
};

function roundTo(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * `MathOperationNode`: config `a`, `b`, `operation` (add, subtract, multiply, divide,
 * floor_divide, modulo, power, min, max, log; one-operand: abs, sqrt, floor, ceil, round,
 * sin, cos, tan, log10, exp, negate), optional `round_digits` and `output_var` (a variable
 * that receives the result). Output `result`.
 */
export function mathOperationNode(ctx: NodeContext): NodeOutcome {
  const rawOp = stringParam(ctx, "operation", "add").trim().toLowerCase();
  const op = ALIASES[rawOp] ?? rawOp;
  const a = numberParam(ctx, "a", 0);
  let result: number;
  if (Object.hasOwn(BINARY, op)) {
    result = BINARY[op](a, numberParam(ctx, "b", 0));
  } else if (Object.hasOwn(UNARY, op)) {
    result = UNARY[op](a);
  } else {
    throw new TypeError(`MathOperationNode "${ctx.nodeId}": unknown operation "${rawOp}"`);
  }
  if (ctx.has("round_digits") && ctx.param("round_digits") !== null) {
    result = roundTo(result, numberParam(ctx, "round_digits"));
  }
  const outputVar = ctx.param("output_var");
  if (typeof outputVar === "string" && outputVar.trim() !== "") {
    ctx.variables.set(outputVar.trim(), result);
  }
  return { outputs: { result } };
}

const OPERATORS: Record<string, string> = {
  "==": "==",
  "equals (==)": "==",
  "!=": "!=",
  "not equals (!=)": "!=",
  ">": ">",
  "greater than (>)": ">",
  "<": "<",
  "less than (<)": "<",
  ">=": ">=",
  "greater or equal (>=)": ">=",
  "<=": "<=",
  "less or equal (<=)": "<=",
};

/** Structural equality of JSON-like values. */
function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b) || a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    Object.hasOwn(b, k) &&
    deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
  );
}

function ordered(ctx: NodeContext, a: unknown, b: unknown): [number | string, number | string] {
  if (typeof a === "number" && typeof b === "number") return [a, b];
  if (typeof a === "string" && typeof b === "string") return [a, b];
  throw new TypeError(
    `ComparisonNode "${ctx.nodeId}": cannot order ${JSON.stringify(a)} and ${JSON.stringify(b)}`,
  );
}

/**
 * `ComparisonNode`: config `a`, `b`, `operator` (`==`, `!=`, `>`, `<`, `>=`, `<=` or
 * CasareRPA's labels such as `greater than (>)`). Output `result` (boolean).
 */
export function comparisonNode(ctx: NodeContext): NodeOutcome {
  const rawOp = stringParam(ctx, "operator", "==").trim();
  const op = OPERATORS[rawOp.toLowerCase()];
  if (!op) throw new TypeError(`ComparisonNode "${ctx.nodeId}": unknown operator "${rawOp}"`);
  const a = ctx.param("a");
  const b = ctx.param("b");
  let result: boolean;
  if (op === "==") result = deepEqual(a, b);
  else if (op === "!=") result = !deepEqual(a, b);
  else {
    const [x, y] = ordered(ctx, a, b);
    result = op === ">" ? x > y : op === "<" ? x < y : op === ">=" ? x >= y : x <= y;
  }
  return { outputs: { result } };
}
