import assert from "node:assert/strict";
import { overlapDecision } from "./_overlap.ts";

const CASES = [
  // policy, previous run active, a tick held → decision
  ["allow", true, false, { action: "fire" }],
  ["allow", false, false, { action: "fire" }],
  ["skip", false, false, { action: "fire" }],
  ["skip", true, false, { action: "skip", reason: "overlap" }],
  ["queue_one", false, false, { action: "fire" }],
  ["queue_one", true, false, { action: "queue" }],
  ["queue_one", true, true, { action: "skip", reason: "queue_full" }],
] as const;

for (const [policy, active, holding, expected] of CASES) {
  Deno.test(
    `overlapDecision(): ${policy}, previous run ${active ? "active" : "ended"}${
      holding ? ", a tick held" : ""
    } → ${expected.action}`,
    () => {
      assert.deepEqual(overlapDecision(policy, active, holding), expected);
    },
  );
}
