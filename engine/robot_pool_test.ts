import assert from "node:assert/strict";
import { type Candidate, ineligibility, selectRobot } from "./robot_pool.ts";

const robot = (id: string, running: number, max = 2, capabilities: string[] = []): Candidate => ({
  robot_id: id,
  running,
  max_concurrent_jobs: max,
  capabilities,
  tags: [],
});

Deno.test("least_loaded picks the lowest running/max ratio, ties by fewer jobs then id", () => {
  const pool = [robot("a", 1, 2), robot("b", 1, 4), robot("c", 2, 4)];
  assert.equal(selectRobot(pool, { strategy: "least_loaded" })?.robot_id, "b");
  assert.equal(
    selectRobot([robot("b", 0), robot("a", 0)], { strategy: "least_loaded" })?.robot_id,
    "a",
  );
});

Deno.test("round_robin cycles through robots in id order after the last chosen", () => {
  const pool = [robot("c", 0), robot("a", 0), robot("b", 0)];
  const chosen: string[] = [];
  let last: string | null = null;
  for (let i = 0; i < 4; i++) {
    last = selectRobot(pool, { strategy: "round_robin", lastChosen: last })!.robot_id;
    chosen.push(last);
  }
  assert.deepEqual(chosen, ["a", "b", "c", "a"]);
});

Deno.test("random uses the given number to pick", () => {
  const pool = [robot("a", 0), robot("b", 0), robot("c", 0)];
  assert.equal(selectRobot(pool, { strategy: "random", random: 0 })?.robot_id, "a");
  assert.equal(selectRobot(pool, { strategy: "random", random: 0.99 })?.robot_id, "c");
});

Deno.test("affinity prefers the robot that last ran the workflow, else least_loaded", () => {
  const pool = [robot("a", 1), robot("b", 0)];
  assert.equal(selectRobot(pool, { strategy: "affinity", preferred: "a" })?.robot_id, "a");
  assert.equal(selectRobot(pool, { strategy: "affinity", preferred: "gone" })?.robot_id, "b");
  assert.equal(selectRobot([], { strategy: "affinity", preferred: "a" }), null);
});

Deno.test("ineligibility() names why a robot cannot take a job", () => {
  const job = { requested_robot_id: null, required_capabilities: ["browser"], rejected_by: ["x"] };
  assert.equal(ineligibility(robot("a", 2, 2, ["browser"]), job), "at capacity");
  assert.equal(ineligibility(robot("x", 0, 2, ["browser"]), job), "rejected this job");
  assert.equal(ineligibility(robot("b", 0, 2, []), job), "lacks capabilities browser");
  assert.equal(
    ineligibility(robot("c", 0, 2, ["browser"]), { ...job, requested_robot_id: "d" }),
    "not requested",
  );
  assert.equal(ineligibility(robot("c", 0, 2, ["browser"]), job), null);
});

Deno.test("every strategy chooses among the robots holding the workflow when one can take it", () => {
  const pool = [robot("a", 0), robot("b", 1), robot("c", 1)];
  const holding = new Set(["b", "c", "gone"]);
  for (const strategy of ["least_loaded", "round_robin", "random", "affinity"] as const) {
    const chosen = selectRobot(pool, { strategy, holding, random: 0, preferred: "a" })!.robot_id;
    assert.ok(holding.has(chosen), `${strategy} chose ${chosen}`);
  }
  assert.equal(
    selectRobot([robot("a", 0)], { strategy: "least_loaded", holding })?.robot_id,
    "a",
    "falls back to the others when no holder is a candidate",
  );
});
