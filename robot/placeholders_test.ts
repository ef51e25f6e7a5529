import assert from "node:assert/strict";
import { formatValue, getPath, type LookupResult, resolvePlaceholders } from "./placeholders.ts";

const scope: Record<string, unknown> = {
  items: ["A", "B"],
  n: 3,
  user: { name: "Ada", tags: ["x"] },
  nothing: null,
};
const lookup = (path: readonly string[]): LookupResult =>
  Object.hasOwn(scope, path[0]) ? getPath(scope[path[0]], path.slice(1)) : { found: false };

Deno.test("resolvePlaceholders() keeps the type of a whole-string placeholder", () => {
  assert.deepEqual(resolvePlaceholders("{{items}}", lookup), ["A", "B"]);
  assert.equal(resolvePlaceholders("{{ n }}", lookup), 3);
  assert.equal(resolvePlaceholders("{{nothing}}", lookup), null);
  assert.equal(resolvePlaceholders("{{user.tags.0}}", lookup), "x");
});

Deno.test("resolvePlaceholders() formats embedded placeholders as text", () => {
  assert.equal(
    resolvePlaceholders("{{user.name}} has {{n}} of {{items}}", lookup),
    'Ada has 3 of ["A","B"]',
  );
});

Deno.test("resolvePlaceholders() substitutes deeply and leaves unknown names as written", () => {
  const unresolved: string[] = [];
  const input = { list: ["{{n}}", { who: "{{user.name}}" }], keep: "{{missing}} {{n}}", x: 1 };
  assert.deepEqual(
    resolvePlaceholders(input, lookup, { onUnresolved: (p) => unresolved.push(p) }),
    { list: [3, { who: "Ada" }], keep: "{{missing}} 3", x: 1 },
  );
  assert.deepEqual(unresolved, ["{{missing}}"]);
  assert.equal(input.list[0], "{{n}}");
});

Deno.test("getPath() reads own properties only", () => {
  assert.deepEqual(getPath({}, ["constructor"]), { found: false });
  assert.deepEqual(getPath({ a: 1 }, ["a", "toString"]), { found: false });
  assert.deepEqual(getPath([1, 2], ["1"]), { found: true, value: 2 });
});

Deno.test("formatValue() writes text, JSON and primitives", () => {
  assert.equal(formatValue("s"), "s");
  assert.equal(formatValue({ a: [1, true] }), '{"a":[1,true]}');
  assert.equal(formatValue(2.5), "2.5");
  assert.equal(formatValue(false), "false");
  assert.equal(formatValue(null), "null");
  assert.equal(formatValue(undefined), "");
});
