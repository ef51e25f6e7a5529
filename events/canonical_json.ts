/**
 * Canonical JSON (RFC 8785, JSON Canonicalization Scheme): the byte form that event hashes
 * are computed over, so that an auditor can recompute them in any language.
 *
 * @module
 */

/**
 * Serialises a JSON value per RFC 8785 (JCS): object members sorted by their keys' UTF-16
 * code units (RFC 8785 §3.2.3), no whitespace, strings escaped as ECMAScript's
 * `JSON.stringify` does (§3.2.2.2), numbers in ECMAScript's shortest round-trip form
 * (`Number.prototype.toString`, §3.2.2.3: `1e+21`, `0.1`, `-0` → `0`).
 *
 * Object members whose value is `undefined` are left out and array holes or `undefined`
 * items become `null`, as `JSON.stringify` does, so the result is what a JSON column reads
 * back.
 *
 * @example Keys are sorted and whitespace dropped
 * ```ts
 * import { canonicalJson } from "./canonical_json.ts";
 * canonicalJson({ b: [1, 2.5e21, "é"], a: null }); // '{"a":null,"b":[1,2.5e+21,"é"]}'
 * ```
 *
 * @param value A JSON value: null, boolean, finite number, string, array or plain object.
 * @returns The canonical JSON text (encode it as UTF-8 to get the canonical bytes).
 * @throws {TypeError} When the value holds a non-finite number, a string with a lone
 *   surrogate (RFC 8785 §3.2.2.2 forbids them), or a value that is not JSON (bigint,
 *   function, symbol).
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw new TypeError(`Canonical JSON forbids lone surrogates, got ${JSON.stringify(value)}`);
      }
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`Canonical JSON needs finite numbers, got ${value}`);
      }
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          out += value[i] === undefined ? "null" : canonicalJson(value[i]);
        }
        return out + "]";
      }
      const record = value as Record<string, unknown>;
      // Default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires.
      const keys = Object.keys(record).sort();
      let out = "{";
      let first = true;
      for (const key of keys) {
        const item = record[key];
        if (item === undefined) continue;
        if (!first) out += ",";
        first = false;
        out += canonicalJson(key) + ":" + canonicalJson(item);
      }
      return out + "}";
    }
    default:
      throw new TypeError(`Canonical JSON cannot hold a ${typeof value}`);
  }
}
