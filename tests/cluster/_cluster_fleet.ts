/**
 * A process of real robots for the cluster test: `--count` reference
 * {@linkcode RobotClient}s, robot `i` given every node's URL starting at node `i mod n`, so
 * that the robots are spread across the nodes and each moves to the next node when its
 * own dies (reconnect backoff 50–500 ms).
 *
 * `deno run -A tests/cluster/_cluster_fleet.ts --urls ws://a,ws://b --count 9 --max-jobs 4`
 * with the robot token in `ROBOT_TOKEN`. Prints `registered <robot_id> <url>` on every
 * registration; SIGTERM stops it.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { RobotClient } from "../../robot/robot_client.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    urls: { type: "string" },
    count: { type: "string", default: "9" },
    "max-jobs": { type: "string", default: "4" },
    prefix: { type: "string", default: "cluster-robot" },
  },
});
const urls = values.urls!.split(",");
const token = Deno.env.get("ROBOT_TOKEN") ?? "";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const robots = Array.from({ length: Number(values.count) }, (_, i) => {
  const mine = [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)];
  return new RobotClient({
    url: mine[0],
    urls: mine,
    token,
    name: `${values.prefix}-${i + 1}`,
    maxConcurrentJobs: Number(values["max-jobs"]),
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    logger: quiet,
  });
});
for (const r of robots) {
  r.on("registered", (info) => console.log(`registered ${info.robotId} ${r.url}`));
}
const stop = () => {
  Promise.all(robots.map((r) => r.close("fleet stopping"))).finally(() => Deno.exit(0));
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
await Promise.all(robots.map((r) => r.start().catch(() => {})));
