import assert from "node:assert/strict";
import { workflowExpectations, WORKFLOWS_DIR } from "../tests/workflow_expectations.ts";
import type { Clock } from "./clock.ts";
import type { JobResultLike, LogEntry } from "./job_result.ts";
import { executeWorkflow } from "./workflow_engine.ts";

/** A clock that only moves when something sleeps on it. */
function fakeClock(start = Date.UTC(2026, 0, 1)): Clock & { advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    sleep: (ms, signal) => {
      if (signal?.aborted) return Promise.reject(signal.reason);
      t += ms;
      return Promise.resolve();
    },
    advance: (ms) => (t += ms),
  };
}

type Node = { type: string; config?: Record<string, unknown> };

/** Builds a workflow from nodes and `"a.port -> b"` exec connections. */
function workflow(
  nodes: Record<string, Node>,
  edges: string[] = [],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    metadata: { name: "test" },
    nodes: Object.fromEntries(
      Object.entries(nodes).map(([id, n]) => [
        id,
        { node_id: id, node_type: n.type, config: n.config ?? {}, position: [0, 0] },
      ]),
    ),
    connections: edges.map((e) => {
      const [from, to] = e.split("->").map((s) => s.trim());
      const [source_node, source_port = "exec_out"] = from.split(".");
      const [target_node, target_port = "exec_in"] = to.split(".");
      return { source_node, source_port, target_node, target_port };
    }),
    variables: {},
    settings: { stop_on_error: true, timeout: 30, retry_count: 0 },
    ...extra,
  };
}

const messages = (r: JobResultLike): string[] => r.logs.map((l) => l.message);

function assertInOrder(actual: string[], expected: string[]): void {
  let from = 0;
  for (const m of expected) {
    const i = actual.indexOf(m, from);
    assert.ok(i >= 0, `missing log ${JSON.stringify(m)} (in order) in ${JSON.stringify(actual)}`);
    from = i + 1;
  }
}

Deno.test("every workflow file has an expectation row", async () => {
  const files: string[] = [];
  for await (const e of Deno.readDir(WORKFLOWS_DIR)) {
    if (e.name.endsWith(".json")) files.push(e.name);
  }
  assert.deepEqual(files.sort(), workflowExpectations.map((w) => w.file).sort());
});

for (const exp of workflowExpectations) {
  Deno.test(`executeWorkflow() runs ${exp.file} to "${exp.status}" with the expected logs`, async () => {
    const content = JSON.parse(await Deno.readTextFile(new URL(exp.file, WORKFLOWS_DIR)));
    const streamed: LogEntry[] = [];
    const result = await executeWorkflow(content, {
      clock: fakeClock(),
      onLog: (e) => streamed.push(e),
    });
    assert.equal(result.status, exp.status, JSON.stringify(result.error));
    assertInOrder(messages(result), exp.logIncludes);
    for (const m of exp.logExcludes ?? []) assert.ok(!messages(result).includes(m), m);
    for (const s of exp.errorIncludes ?? []) assert.ok(result.error?.message.includes(s), s);
    if (exp.errorType) assert.equal(result.error?.type, exp.errorType);
    if (exp.errorNodeId) assert.equal(result.error?.node_id, exp.errorNodeId);
    assert.deepEqual(streamed, result.logs);
    if (exp.status === "completed") assert.equal(result.error, undefined);
  });
}

Deno.test("executeWorkflow() reports node results, outputs and execution time", async () => {
  const clock = fakeClock();
  const content = JSON.parse(
    await Deno.readTextFile(new URL("stress_task_3.json", WORKFLOWS_DIR)),
  );
  const result = await executeWorkflow(content, { clock });
  assert.deepEqual(result.node_results.subtract_step.output, { result: 40 });
  assert.equal(result.node_results.subtract_step.status, "completed");
  assert.equal(result.execution_time, 0);
  assert.equal(result.logs[0].timestamp, "2026-01-01T00:00:00.000Z");
  assert.equal(result.logs[0].node_id, "log_result");
  const loop = await executeWorkflow(
    JSON.parse(await Deno.readTextFile(new URL("stress_task_1.json", WORKFLOWS_DIR))),
    { clock },
  );
  assert.equal(loop.outputs.total_sum, 15);
});

Deno.test("placeholders: a whole-string placeholder keeps its type, embedded ones become text", async () => {
  const result = await executeWorkflow(
    workflow({
      list: { type: "SetVariableNode", config: { variable_name: "copy", value: "{{items}}" } },
      text: { type: "LogNode", config: { message: "items={{items}} n={{n}} ok={{ok}}" } },
      dict: { type: "CreateDictNode", config: { key_1: "k", value_1: "{{n}}" } },
      field: { type: "LogNode", config: { message: "{{dict.dict.k}} / {{dict.output}}" } },
    }, ["list -> text", "text -> dict", "dict -> field"]),
    { variables: { items: [1, "b"], n: 3, ok: true }, clock: fakeClock() },
  );
  assert.equal(result.status, "completed");
  assert.deepEqual(result.outputs.copy, [1, "b"]);
  assert.deepEqual(messages(result), ['items=[1,"b"] n=3 ok=true', '3 / {"k":3}']);
});

Deno.test("placeholders: an unknown name is left as written and warned about once", async () => {
  const result = await executeWorkflow(
    workflow({
      a: { type: "LogNode", config: { message: "hi {{nobody}}" } },
    }),
    { clock: fakeClock() },
  );
  assert.equal(result.status, "completed");
  assert.deepEqual(result.logs.map((l) => [l.level, l.message]), [
    ["warning", 'Placeholder {{nobody}} in "message" matches no variable or node output'],
    ["info", "hi {{nobody}}"],
  ]);
});

Deno.test("conditions bind values instead of pasting them into the expression", async () => {
  const result = await executeWorkflow(
    workflow({
      check: { type: "IfNode", config: { condition: "{{name}} == 'admin'" } },
      yes: { type: "LogNode", config: { message: "yes" } },
      no: { type: "LogNode", config: { message: "no" } },
    }, ["check.true -> yes", "check.false -> no"]),
    { variables: { name: "x' || true || 'y" }, clock: fakeClock() },
  );
  assert.deepEqual(messages(result), ["no"]);
});

Deno.test("an invalid condition fails the run with an ExpressionError", async () => {
  const result = await executeWorkflow(
    workflow({ check: { type: "IfNode", config: { condition: "{{n}} >" } } }),
    { variables: { n: 1 }, clock: fakeClock() },
  );
  assert.equal(result.status, "failed");
  assert.equal(result.error?.type, "ExpressionError");
  assert.equal(result.error?.node_id, "check");
  assert.equal(result.node_results.check.status, "failed");
});

Deno.test("an unsupported node type fails the run before any node runs", async () => {
  const result = await executeWorkflow(
    workflow({
      first: { type: "LogNode", config: { message: "must not run" } },
      click: { type: "ClickElementNode" },
    }, ["first -> click"]),
    { clock: fakeClock() },
  );
  assert.equal(result.status, "failed");
  assert.equal(result.error?.type, "UnsupportedNodeError");
  assert.equal(result.error?.node_id, "click");
  assert.match(result.error?.message ?? "", /ClickElementNode.*"click"/);
  assert.deepEqual(result.node_results, {});
  assert.ok(!messages(result).includes("must not run"));
});

Deno.test("content that is not a workflow fails with a WorkflowValidationError", async () => {
  for (
    const content of [
      null,
      "not json",
      { nodes: 3 },
      workflow({ a: { type: "LogNode" } }, ["a -> a"]),
    ]
  ) {
    const result = await executeWorkflow(content, { clock: fakeClock() });
    assert.equal(result.status, "failed");
    assert.equal(result.error?.type, "WorkflowValidationError", JSON.stringify(content));
  }
});

Deno.test("aborting the signal cancels a running workflow", async () => {
  const controller = new AbortController();
  let seen = 0;
  const result = await executeWorkflow(
    workflow({
      init: { type: "SetVariableNode", config: { variable_name: "i", value: 0 } },
      loop: { type: "WhileLoopStartNode", config: { condition: "true", max_iterations: 1e9 } },
      log: { type: "LogNode", config: { message: "tick" } },
      end: { type: "WhileLoopEndNode", config: { paired_start_id: "loop" } },
    }, ["init -> loop", "loop.body -> log", "log -> end"]),
    {
      clock: fakeClock(),
      signal: controller.signal,
      onLog: () => {
        if (++seen === 3) controller.abort(new Error("cancel_job from orchestrator"));
      },
    },
  );
  assert.equal(result.status, "cancelled");
  assert.equal(result.error?.type, "JobCancelledError");
  assert.match(result.error?.message ?? "", /cancel_job from orchestrator/);
  assert.equal(messages(result).filter((m) => m === "tick").length, 3);
});

Deno.test("aborting the signal interrupts a waiting node", async () => {
  const controller = new AbortController();
  const clock: Clock = {
    now: () => 0,
    sleep: (_ms, signal) =>
      new Promise((_resolve, reject) => {
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
        queueMicrotask(() => controller.abort("stop"));
      }),
  };
  const result = await executeWorkflow(
    workflow({ wait: { type: "WaitNode", config: { duration_ms: 60_000 } } }),
    { clock, signal: controller.signal },
  );
  assert.equal(result.status, "cancelled");
  assert.equal(result.error?.message, "Job was cancelled: stop");
});

Deno.test("an already aborted signal runs nothing", async () => {
  const result = await executeWorkflow(
    workflow({ a: { type: "LogNode", config: { message: "x" } } }),
    { signal: AbortSignal.abort(), clock: fakeClock() },
  );
  assert.equal(result.status, "cancelled");
  assert.deepEqual(result.node_results, {});
});

Deno.test("a while loop past its iteration limit fails with an IterationLimitError", async () => {
  const result = await executeWorkflow(
    workflow({
      loop: { type: "WhileLoopStartNode", config: { condition: "{{go}}" } },
      end: { type: "WhileLoopEndNode", config: { paired_start_id: "loop" } },
    }, ["loop.body -> end"]),
    { variables: { go: true }, maxLoopIterations: 50, clock: fakeClock() },
  );
  assert.equal(result.status, "failed");
  assert.equal(result.error?.type, "IterationLimitError");
  assert.equal(result.error?.node_id, "loop");
  assert.match(result.error?.message ?? "", /limit of 50 iterations/);
});

Deno.test("a cycle of exec connections fails at the step limit", async () => {
  const result = await executeWorkflow(
    workflow({
      start: { type: "StartNode" },
      a: { type: "MergeNode" },
      b: { type: "MergeNode" },
    }, ["start -> a", "a -> b", "b -> a"]),
    { maxSteps: 100, clock: fakeClock() },
  );
  assert.equal(result.status, "failed");
  assert.equal(result.error?.type, "IterationLimitError");
  assert.match(result.error?.message ?? "", /limit of 100 node executions/);
});

Deno.test("the workflow timeout fails a run that takes too long", async () => {
  const result = await executeWorkflow(
    workflow(
      {
        wait: { type: "WaitNode", config: { duration_ms: 5_000 } },
        after: { type: "LogNode", config: { message: "late" } },
      },
      ["wait -> after"],
      { settings: { timeout: 2 } },
    ),
    { clock: fakeClock() },
  );
  assert.equal(result.status, "failed");
  assert.equal(result.error?.type, "WorkflowTimeoutError");
  assert.equal(result.execution_time, 5);
});

Deno.test("stop_on_error false records the failure and continues at exec_out", async () => {
  const nodes = {
    bad: { type: "MathOperationNode", config: { a: 1, b: 0, operation: "divide" } },
    after: { type: "LogNode", config: { message: "after" } },
  };
  const go = await executeWorkflow(
    workflow(nodes, ["bad -> after"], {
      settings: { stop_on_error: false, timeout: 0, retry_count: 0 },
    }),
    { clock: fakeClock() },
  );
  assert.equal(go.status, "completed");
  assert.equal(go.node_results.bad.status, "failed");
  assert.equal(go.node_results.bad.error, "Division by zero");
  assertInOrder(messages(go), ["Division by zero (continuing: stop_on_error is false)", "after"]);

  const stop = await executeWorkflow(workflow(nodes, ["bad -> after"]), { clock: fakeClock() });
  assert.equal(stop.status, "failed");
  assert.deepEqual(stop.error && [stop.error.type, stop.error.node_id], ["RangeError", "bad"]);
  assert.ok(!messages(stop).includes("after"));
});

Deno.test("retry_count retries a failing node", async () => {
  let calls = 0;
  const nodes = new Map([["FlakyNode", () => {
    if (++calls < 3) throw new Error("flaky");
    return { outputs: { ok: true } };
  }]]);
  const result = await executeWorkflow(
    workflow({ f: { type: "FlakyNode" } }, [], {
      settings: { stop_on_error: true, timeout: 0, retry_count: 2 },
    }),
    { nodes, clock: fakeClock() },
  );
  assert.equal(result.status, "completed");
  assert.equal(calls, 3);
  assert.equal(result.logs.filter((l) => l.level === "warning").length, 2);
});

Deno.test("break, continue, switch by case value and data connections", async () => {
  const result = await executeWorkflow(
    {
      ...workflow({
        loop: { type: "ForLoopStartNode", config: { items: [1, 2, 3, 4, 5] } },
        skip2: { type: "IfNode", config: { condition: "{{loop.current_item}} == 2" } },
        cont: { type: "ContinueNode" },
        stop4: { type: "IfNode", config: { condition: "item >= 4" } },
        brk: { type: "BreakNode", config: { paired_loop_start_id: "loop" } },
        log: { type: "LogNode", config: { message: "item {{item}} #{{loop.index}}" } },
        end: { type: "ForLoopEndNode" },
        sw: { type: "SwitchNode", config: { value: "{{mode}}", cases: ["a", "b"] } },
        b: { type: "LogNode", config: { message: "case b" } },
        last: { type: "LogNode" },
      }, [
        "loop.body -> skip2",
        "skip2.true -> cont",
        "skip2.false -> stop4",
        "stop4.true -> brk",
        "stop4.false -> log",
        "log -> end",
        "loop.completed -> sw",
        "sw.case_b -> b",
        "b -> last",
      ]),
    },
    { variables: { mode: "b" }, clock: fakeClock() },
  );
  const withData = await executeWorkflow({
    ...workflow({
      sum: { type: "MathOperationNode", config: { a: 2, b: 3 } },
      show: { type: "LogNode", config: { message: "unused" } },
    }, ["sum -> show"]),
    connections: [
      { source_node: "sum", source_port: "exec_out", target_node: "show", target_port: "exec_in" },
      { source_node: "sum", source_port: "result", target_node: "show", target_port: "message" },
    ],
  }, { clock: fakeClock() });
  assert.equal(result.status, "completed", JSON.stringify(result.error));
  assert.deepEqual(messages(result), ["item 1 #0", "item 3 #2", "case b", ""]);
  assert.deepEqual(messages(withData), ["5"]);
});

Deno.test("FormatString, Comparison and MathOperation options", async () => {
  const result = await executeWorkflow(
    workflow({
      fmt: {
        type: "FormatStringNode",
        config: { template: "{a}-{b} {{x}}", variables: { a: 1 } },
      },
      cmp: { type: "ComparisonNode", config: { a: "abc", b: "abd", operator: "less than (<)" } },
      math: {
        type: "MathOperationNode",
        config: { a: 10, b: 3, operation: "divide", round_digits: 2, output_var: "q" },
      },
      log: { type: "LogNode", config: { message: "{{fmt.result}} {{cmp.result}} {{q}}" } },
    }, ["fmt -> cmp", "cmp -> math", "math -> log"]),
    { variables: { b: "B" }, clock: fakeClock() },
  );
  assert.deepEqual(result.logs.filter((l) => l.level === "info").map((l) => l.message), [
    "1-B {x} true 3.33",
  ]);
});
