import assert from "node:assert/strict";
import { createConditionEvaluator, isTruthy } from "./condition_expression.ts";
import type { LookupResult } from "./placeholders.ts";
import { ExpressionError } from "./workflow_errors.ts";

const vars = new Map<string, unknown>([
  ["counter", 2],
  ["price", 2.5],
  ["name", "Bob"],
  ["user", { role: "admin", tags: ["a", "b"] }],
  ["flag", true],
]);
const lookup = (p: readonly string[]): LookupResult =>
  vars.has(p[0]) && p.length === 1 ? { found: true, value: vars.get(p[0]) } : { found: false };

Deno.test("conditions of the sample workflows evaluate as CasareRPA would", () => {
  const ev = createConditionEvaluator();
  const cases: [string, unknown][] = [
    ["{{counter}} < 3", true],
    ["{{counter}} <= 1", false],
    ["{{counter}} > 20", false],
    ["{{flag}} == true", true],
    ["{{flag}}", true],
    ["counter + 1 == 3", true],
    ["{{price}} > 2", true],
    ["'{{name}}' == 'Bob'", true],
    ["{{name}} == 'Bob' && user.role == 'admin'", true],
    ["'b' in user.tags", true],
    ["size(user.tags)", 2],
    ["True && !False", true],
    ["None == null", true],
  ];
  for (const [expr, expected] of cases) {
    assert.deepEqual(ev.evaluate(expr, lookup, vars), expected, expr);
  }
});

Deno.test("non-string conditions are returned as they are", () => {
  const ev = createConditionEvaluator();
  assert.equal(ev.evaluate(true, lookup, vars), true);
  assert.equal(ev.evaluate(undefined, lookup, vars), undefined);
  assert.equal(ev.evaluate("  ", lookup, vars), false);
});

Deno.test("bad conditions throw an ExpressionError naming the expression", () => {
  const ev = createConditionEvaluator();
  for (const expr of ["{{counter}} <", "{{missing}} > 1", "unknown_var > 1", "'a' > 1"]) {
    assert.throws(() => ev.evaluate(expr, lookup, vars), (e: unknown) => {
      assert.ok(e instanceof ExpressionError, `${expr}: ${e}`);
      assert.equal(e.expression, expr);
      return true;
    });
  }
});

Deno.test("conditions cannot reach the host", () => {
  const ev = createConditionEvaluator();
  for (
    const expr of ["user.constructor", "user['__proto__']", "name.constructor.constructor('1')"]
  ) {
    assert.throws(() => ev.evaluate(expr, lookup, vars), ExpressionError, expr);
  }
});

Deno.test("isTruthy() follows Python's bool()", () => {
  for (const v of [false, 0, "", null, undefined, [], {}, NaN]) assert.equal(isTruthy(v), false);
  for (const v of [true, 1, "false", [0], { a: 1 }]) assert.equal(isTruthy(v), true);
});
