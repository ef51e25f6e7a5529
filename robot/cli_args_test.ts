import assert from "node:assert/strict";
import { CliUsageError, parseRobotArgs } from "./cli_args.ts";

const base = ["--url", "ws://127.0.0.1:8765/ws/robot", "--name", "r1"];
const noEnv = () => undefined;

Deno.test("parseRobotArgs() reads every option", () => {
  assert.deepEqual(
    parseRobotArgs([
      ...base,
      "--token=t",
      "--capabilities",
      "math, browser",
      "--tags",
      "eu",
      "--max-jobs",
      "3",
      "--robot-id",
      "id-1",
      "--environment",
      "prod",
    ], noEnv),
    {
      url: "ws://127.0.0.1:8765/ws/robot",
      urls: ["ws://127.0.0.1:8765/ws/robot"],
      token: "t",
      name: "r1",
      robotId: "id-1",
      capabilities: ["math", "browser"],
      tags: ["eu"],
      maxConcurrentJobs: 3,
      environment: "prod",
      help: false,
    },
  );
});

Deno.test("parseRobotArgs() takes the token from ROBOT_TOKEN, then ORCHESTRATOR_ROBOT_TOKEN", () => {
  const env = (vars: Record<string, string>) => (k: string) => vars[k];
  assert.equal(
    parseRobotArgs(base, env({ ROBOT_TOKEN: "a", ORCHESTRATOR_ROBOT_TOKEN: "b" })).token,
    "a",
  );
  assert.equal(parseRobotArgs(base, env({ ORCHESTRATOR_ROBOT_TOKEN: "b" })).token, "b");
  assert.equal(parseRobotArgs([...base, "--token", "c"], env({ ROBOT_TOKEN: "a" })).token, "c");
});

Deno.test("parseRobotArgs() takes several nodes' URLs from --url a,b or ORCHESTRATOR_URLS", () => {
  const two = "ws://a:1/ws/robot, ws://b:2/ws/robot";
  const fromArg = parseRobotArgs(["--url", two, "--name", "r", "--token", "t"], noEnv);
  assert.deepEqual(fromArg.urls, ["ws://a:1/ws/robot", "ws://b:2/ws/robot"]);
  assert.equal(fromArg.url, "ws://a:1/ws/robot");
  const fromEnv = parseRobotArgs(
    ["--name", "r", "--token", "t"],
    (k) => k === "ORCHESTRATOR_URLS" ? two : undefined,
  );
  assert.deepEqual(fromEnv.urls, ["ws://a:1/ws/robot", "ws://b:2/ws/robot"]);
  assert.throws(
    () => parseRobotArgs(["--url", "ws://a:1/ws,http://b", "--name", "r", "--token", "t"], noEnv),
    /ws:\/\/ or wss:\/\/, got http:\/\/b/,
  );
});

Deno.test("parseRobotArgs() rejects bad command lines with a usage error", () => {
  const cases: [string[], RegExp][] = [
    [["--name", "r", "--token", "t"], /Missing --url/],
    [["--url", "http://x/ws/robot", "--name", "r", "--token", "t"], /ws:\/\/ or wss:\/\//],
    [[...base], /Missing --token/],
    [["--url", "ws://x/ws", "--token", "t"], /Missing --name/],
    [[...base, "--token", "t", "--max-jobs", "0"], /--max-jobs must be an integer ≥ 1, got 0/],
    [[...base, "--token", "t", "--max-jobs", "1.5"], /got 1.5/],
    [[...base, "--token", "t", "--bogus"], /bogus/],
    [[...base, "--token", "t", "extra"], /extra/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseRobotArgs(args, noEnv), (e: unknown) => {
      assert.ok(e instanceof CliUsageError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("parseRobotArgs() recognises --help without other options", () => {
  assert.equal(parseRobotArgs(["--help"], noEnv).help, true);
});
