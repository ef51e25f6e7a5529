/**
 * `{{name}}` / `{{node_id.output}}` placeholders in workflow config values.
 *
 * @module
 */

/** Matches one placeholder; group 1 is the dotted path, e.g. `loop.current_item`. */
export const PLACEHOLDER_PATTERN: RegExp = /\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}/g;

const WHOLE_PLACEHOLDER = /^\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}$/;

/** Result of looking a placeholder path up. */
export type LookupResult = { found: true; value: unknown } | { found: false };

/**
 * Resolves a dotted placeholder path split on dots, e.g. `["loop", "current_item"]`.
 * Returns `{found: false}` when nothing has that name.
 */
export type PlaceholderLookup = (path: readonly string[]) => LookupResult;

const NOT_FOUND: LookupResult = { found: false };

/**
 * Walks `path` into `value` through own properties only (never the prototype chain).
 *
 * @param value Where to start.
 * @param path Property names or array indexes.
 * @returns The value found, or `{found: false}`.
 * @example Read a nested field
 * ```ts
 * import { getPath } from "./placeholders.ts";
 * console.log(getPath({ a: [{ b: 1 }] }, ["a", "0", "b"])); // { found: true, value: 1 }
 * ```
 */
export function getPath(value: unknown, path: readonly string[]): LookupResult {
  let current = value;
  for (const key of path) {
    if (typeof current !== "object" || current === null) return NOT_FOUND;
    if (current instanceof Map) {
      if (!current.has(key)) return NOT_FOUND;
      current = current.get(key);
    } else if (Object.hasOwn(current, key)) {
      current = (current as Record<string, unknown>)[key];
    } else {
      return NOT_FOUND;
    }
  }
  return { found: true, value: current };
}

/**
 * Text form of a value inside a longer string: strings as they are, objects and arrays as
 * JSON, everything else through `String()`.
 *
 * @param value Any value.
 * @returns Its text form.
 */
export function formatValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? Number(v) : v);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

/** Options of {@linkcode resolvePlaceholders}. */
export interface ResolveOptions {
  /** Called with each placeholder that nothing answers (it is left as written). */
  onUnresolved?: (placeholder: string) => void;
}

/**
 * Substitutes placeholders in a config value, deeply (inside arrays and objects too).
 *
 * A string that is exactly one placeholder takes the referenced value with its type (a
 * list stays a list, a number a number). A placeholder inside a longer string is replaced
 * by {@linkcode formatValue} of the value. Unresolved placeholders are left as written.
 *
 * @param value A config value.
 * @param lookup Resolves placeholder paths.
 * @param options Hook for unresolved placeholders.
 * @returns The value with placeholders substituted; the input is not modified.
 * @example Whole-string and embedded placeholders
 * ```ts
 * import { resolvePlaceholders } from "./placeholders.ts";
 * const vars: Record<string, unknown> = { items: [1, 2], n: 3 };
 * const lookup = (p: readonly string[]) =>
 *   p[0] in vars ? { found: true as const, value: vars[p[0]] } : { found: false as const };
 * resolvePlaceholders("{{items}}", lookup); // [1, 2]
 * resolvePlaceholders("n is {{n}}", lookup); // "n is 3"
 * ```
 */
export function resolvePlaceholders(
  value: unknown,
  lookup: PlaceholderLookup,
  options: ResolveOptions = {},
): unknown {
  if (typeof value === "string") return resolveString(value, lookup, options);
  if (Array.isArray(value)) return value.map((v) => resolvePlaceholders(v, lookup, options));
  if (typeof value === "object" && value !== null && !(value instanceof Map)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = resolvePlaceholders(v, lookup, options);
    }
    return out;
  }
  return value;
}

function resolveString(text: string, lookup: PlaceholderLookup, options: ResolveOptions): unknown {
  if (!text.includes("{{")) return text;
  const whole = WHOLE_PLACEHOLDER.exec(text);
  if (whole) {
    const r = lookup(whole[1].split("."));
    if (r.found) return r.value;
    options.onUnresolved?.(text);
    return text;
  }
  return text.replace(PLACEHOLDER_PATTERN, (match, path: string) => {
    const r = lookup(path.split("."));
    if (r.found) return formatValue(r.value);
    options.onUnresolved?.(match);
    return match;
  });
}

/**
 * Whether `text` is exactly one placeholder, and its path if so.
 *
 * @param text Any string.
 * @returns The dotted path, or `undefined`.
 */
export function wholePlaceholderPath(text: string): string | undefined {
  return WHOLE_PLACEHOLDER.exec(text)?.[1];
}
