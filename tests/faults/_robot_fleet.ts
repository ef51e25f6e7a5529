/**
 * A process of real robots for the fault-injection suite: `--count` reference
 * {@linkcode RobotClient}s (the real workflow engine, the real WebSocket protocol) in one
 * process, so that five robots cost one Deno start instead of five.
 *
 * `deno run -A tests/faults/_robot_fleet.ts --url ws://… --count 5 --max-jobs 8 --prefix r`
 * with the robot token in `ROBOT_TOKEN`. Reconnects back off from 50 ms to at most 500 ms
 * (the reference robot's defaults are 0.5 s to 30 s; the schedule is the same, only
 * shorter, so that a round of the suite does not wait 30 s for a robot). Prints
 * `registered <robot_id>` on every registration; SIGTERM stops it (running jobs are
 * cancelled).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { RobotClient } from "../../robot/robot_client.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string" },
    count: { type: "string", default: "5" },
    "max-jobs": { type: "string", default: "4" },
    prefix: { type: "string", default: "fault-robot" },
  },
});
const token = Deno.env.get("ROBOT_TOKEN") ?? "";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const robots = Array.from({ length: Number(values.count) }, (_, i) =>
  new RobotClient({
    url: values.url!,
    token,
    name: `${values.prefix}-${i + 1}`,
    maxConcurrentJobs: Number(values["max-jobs"]),
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    logger: quiet,
  }));
for (const r of robots) {
  r.on("registered", (info) => console.log(`registered ${info.robotId}`));
}
const stop = () => {
  Promise.all(robots.map((r) => r.close("fleet stopping"))).finally(() => Deno.exit(0));
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
await Promise.all(robots.map((r) => r.start().catch(() => {})));
