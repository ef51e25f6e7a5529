/**
 * Conditions of `If` / `WhileLoopStart` nodes (`"{{counter}} < 3"`), evaluated with CEL,
 * the Common Expression Language (https://github.com/google/cel-spec), through
 * `@marcbachmann/cel-js`: a non-Turing-complete interpreter with no access to the host
 * (no `eval`, no `new Function`, no prototype access, bounded size).
 *
 * Placeholders are never pasted into the expression text: each `{{path}}` becomes a bound
 * variable, so a value such as `"x" || true` cannot change the expression. A placeholder
 * written inside quotes (`'{{name}}' == 'Bob'`) binds the value's text form.
 *
 * @module
 */

import { Environment } from "@marcbachmann/cel-js";
import { formatValue, PLACEHOLDER_PATTERN, type PlaceholderLookup } from "./placeholders.ts";
import { ExpressionError } from "./workflow_errors.ts";

/** Options of {@linkcode createConditionEvaluator}. */
export interface ConditionEvaluatorOptions {
  /** Largest expression accepted, in AST nodes. @default 2000 */
  maxAstNodes?: number;
}

/** Evaluates conditions; holds a parse cache, so create one per run. */
export interface ConditionEvaluator {
  /**
   * Evaluates a condition.
   *
   * @param expression A CEL expression with placeholders, or a non-string value (returned
   *   as is, e.g. a boolean from a whole-string placeholder).
   * @param lookup Resolves `{{path}}` placeholders.
   * @param variables Workflow variables, also usable by bare name (`counter < 3`).
   * @returns The value of the expression, with CEL integers turned into numbers.
   * @throws {ExpressionError} When it does not parse, names something unknown, or mixes
   *   types CEL does not combine.
   */
  evaluate(
    expression: unknown,
    lookup: PlaceholderLookup,
    variables: ReadonlyMap<string, unknown>,
  ): unknown;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const QUOTED_PLACEHOLDER = /(['"])\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}\1/g;
const WHOLE = /^\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}$/;
const BINDING_PREFIX = "__ph";

/** JS value → CEL value: whole numbers become CEL `int`s (bigint), deeply. */
function toCel(value: unknown): unknown {
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (value === undefined) return null;
  if (Array.isArray(value)) return value.map(toCel);
  if (
    typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype
  ) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  }
  return value;
}

/** CEL value → JS value: bigints become numbers, deeply. */
function fromCel(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(fromCel);
  if (value instanceof Map) {
    return Object.fromEntries([...value].map(([k, v]) => [String(k), fromCel(v)]));
  }
  if (
    typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype
  ) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromCel(v)]));
  }
  return value;
}

/**
 * Creates a condition evaluator. `True`, `False` and `None` are accepted as aliases of
 * CEL's `true`, `false` and `null` (CasareRPA conditions are often written Python-style).
 *
 * @param options Size limit.
 * @returns A fresh evaluator.
 * @example Evaluate a loop condition
 * ```ts
 * import { createConditionEvaluator } from "./condition_expression.ts";
 * const vars = new Map<string, unknown>([["counter", 2]]);
 * const lookup = (p: readonly string[]) =>
 *   vars.has(p[0]) ? { found: true as const, value: vars.get(p[0]) } : { found: false as const };
 * createConditionEvaluator().evaluate("{{counter}} < 3", lookup, vars); // true
 * ```
 */
export function createConditionEvaluator(
  options: ConditionEvaluatorOptions = {},
): ConditionEvaluator {
  const env = new Environment({
    unlistedVariablesAreDyn: true,
    homogeneousAggregateLiterals: false,
    limits: {
      maxAstNodes: options.maxAstNodes ?? 2000,
      maxDepth: 64,
      maxListElements: 1000,
      maxMapEntries: 1000,
      maxCallArguments: 16,
    },
  })
    .registerConstant("True", "bool", true)
    .registerConstant("False", "bool", false)
    .registerConstant("None", "null", null);
  const cache = new Map<string, ReturnType<typeof env.parse>>();

  const compile = (source: string, original: string) => {
    let parsed = cache.get(source);
    if (!parsed) {
      try {
        parsed = env.parse(source);
      } catch (cause) {
        throw new ExpressionError(
          `Condition "${original}" does not parse: ${firstLine(cause)}`,
          { expression: original, cause },
        );
      }
      if (cache.size < 500) cache.set(source, parsed);
    }
    return parsed;
  };

  return {
    evaluate(expression, lookup, variables) {
      if (typeof expression !== "string") return expression;
      const original = expression;
      const text = expression.trim();
      if (text === "") return false;
      const resolve = (path: string): unknown => {
        const r = lookup(path.split("."));
        if (!r.found) {
          throw new ExpressionError(
            `Condition "${original}" refers to {{${path}}}, which is neither a variable nor a node output`,
            { expression: original },
          );
        }
        return r.value;
      };
      const whole = WHOLE.exec(text);
      if (whole) return resolve(whole[1]);

      const bindings: Record<string, unknown> = {};
      let n = 0;
      const bind = (value: unknown): string => {
        const name = `${BINDING_PREFIX}${n++}`;
        bindings[name] = value;
        return name;
      };
      const source = text
        .replace(QUOTED_PLACEHOLDER, (_m, _q, path: string) => bind(formatValue(resolve(path))))
        .replace(PLACEHOLDER_PATTERN, (_m, path: string) => bind(toCel(resolve(path))));

      const context: Record<string, unknown> = {};
      for (const [name, value] of variables) {
        if (IDENTIFIER.test(name) && !name.startsWith(BINDING_PREFIX)) {
          context[name] = toCel(value);
        }
      }
      Object.assign(context, bindings);
      const program = compile(source, original);
      try {
        return fromCel(program(context));
      } catch (cause) {
        throw new ExpressionError(
          `Condition "${original}" cannot be evaluated: ${firstLine(cause)}`,
          { expression: original, cause },
        );
      }
    },
  };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0];
}

/**
 * Truth value of a condition result, as Python's `bool()` (CasareRPA's rule): `false`,
 * `0`, `""`, `null`/`undefined`, `[]`, `{}` and `NaN` are false; everything else is true.
 *
 * @param value A condition result.
 * @returns Its truth value.
 */
export function isTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (value instanceof Map || value instanceof Set) return value.size > 0;
  if (typeof value === "object" && value !== null) return Object.keys(value).length > 0;
  return Boolean(value);
}
