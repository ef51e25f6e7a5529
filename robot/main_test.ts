import assert from "node:assert/strict";
import { WORKFLOWS_DIR } from "../tests/workflow_expectations.ts";
import { FakeOrchestrator } from "./_fake_orchestrator.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

function robotCommand(args: string[], env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      CONFIG,
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      MAIN,
      ...args,
    ],
    env: { NO_COLOR: "1", ...env },
    clearEnv: false,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test("robot CLI exits with code 2 and the usage on a bad command line", async () => {
  const out = await robotCommand(["--url", "http://x/ws/robot", "--name", "r", "--token", "t"])
    .output();
  assert.equal(out.code, 2);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.match(stderr, /--url must start with ws:\/\/ or wss:\/\//);
  assert.match(stderr, /Usage: deno task robot/);
});

Deno.test("robot CLI runs a job, prints one line for it and stops on SIGTERM", async () => {
  const orch = new FakeOrchestrator();
  const child = robotCommand(
    ["--url", orch.url, "--name", "cli-robot", "--tags", "eu,test", "--max-jobs", "2"],
    { ROBOT_TOKEN: "secret" },
  ).spawn();
  let passed = false;
  try {
    const reg = await orch.next("register", undefined, 20_000);
    assert.deepEqual(
      [reg.payload.robot_id, reg.payload.tags, reg.payload.max_concurrent_jobs],
      ["cli-robot", ["eu", "test"], 2],
    );
    const content = JSON.parse(
      await Deno.readTextFile(new URL("stress_task_2.json", WORKFLOWS_DIR)),
    );
    orch.send("job_assignment", {
      job_id: "j-cli",
      lease_id: "l-cli",
      workflow: { workflow_id: "w", name: "greeting", version: 1, content },
      variables: {},
    });
    const result = await orch.next("job_result");
    assert.equal(result.payload.status, "completed");
    child.kill("SIGTERM");
    const bye = await orch.next("disconnect");
    assert.equal(bye.payload.robot_id, "cli-robot");
    passed = true;
  } finally {
    if (!passed) child.kill("SIGKILL"); // an assertion failed: never wait forever on it
    const out = await child.output();
    await orch.close();
    const stdout = new TextDecoder().decode(out.stdout).trim().split("\n");
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(stdout.length, 1);
    assert.match(stdout[0], /job j-cli \(greeting\) completed in \d+\.\d{3} s$/);
  }
});
