/**
 * `CreateDictNode`, `FormatStringNode` and `ConcatenateNode`.
 *
 * @module
 */

import { formatValue } from "../placeholders.ts";
import { type NodeContext, type NodeOutcome, stringParam } from "./node_handler.ts";

const KEY_PARAM = /^key_(\d+)$/;

/**
 * `CreateDictNode`: config pairs `key_N` / `value_N` (N = 1, 2, …; pairs with an empty key
 * are skipped). Output `dict`.
 */
export function createDictNode(ctx: NodeContext): NodeOutcome {
  const indexes = Object.keys(ctx.config)
    .map((k) => KEY_PARAM.exec(k)?.[1])
    .filter((n): n is string => n !== undefined)
    .sort((x, y) => Number(x) - Number(y));
  const dict: Record<string, unknown> = {};
  for (const n of indexes) {
    const key = ctx.param(`key_${n}`);
    if (key === undefined || key === null || key === "") continue;
    if (typeof key === "object") {
      throw new TypeError(`CreateDictNode "${ctx.nodeId}": key_${n} must be text`);
    }
    Object.defineProperty(dict, String(key), {
      value: ctx.param(`value_${n}`) ?? null,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { outputs: { dict } };
}

const FIELD = /\{\{|\}\}|\{([A-Za-z_]\w*)\}/g;

/**
 * `FormatStringNode`: config `template` with Python `str.format` fields (`{name}`; `{{` and
 * `}}` for literal braces) and `variables`, a dict of field values (workflow variables fill
 * fields the dict lacks). Output `result`.
 *
 * Note: `{{name}}` in a config value is first a workflow placeholder, as everywhere.
 */
export function formatStringNode(ctx: NodeContext): NodeOutcome {
  const template = stringParam(ctx, "template");
  const given = ctx.param("variables");
  if (
    given !== undefined && given !== null && (typeof given !== "object" || Array.isArray(given))
  ) {
    throw new TypeError(
      `FormatStringNode "${ctx.nodeId}": variables must be a dict, got ${JSON.stringify(given)}`,
    );
  }
  const values = (given ?? {}) as Record<string, unknown>;
  const result = template.replace(FIELD, (match, name: string | undefined) => {
    if (match === "{{") return "{";
    if (match === "}}") return "}";
    const field = name as string;
    if (Object.hasOwn(values, field)) return formatValue(values[field]);
    if (ctx.variables.has(field)) return formatValue(ctx.variables.get(field));
    throw new TypeError(
      `FormatStringNode "${ctx.nodeId}": template field {${field}} has no value`,
    );
  });
  return { outputs: { result } };
}

/** `ConcatenateNode`: config `string_1`, `string_2`, `separator`. Output `result`. */
export function concatenateNode(ctx: NodeContext): NodeOutcome {
  const result = [
    formatValue(ctx.param("string_1") ?? ""),
    formatValue(ctx.param("string_2") ?? ""),
  ].join(stringParam(ctx, "separator"));
  return { outputs: { result } };
}
