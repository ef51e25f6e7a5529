/**
 * `deno task replay --until <RFC 3339 instant>`: the jobs, robots, queue and metrics as
 * they stood at that instant, by folding the log up to it. Prints JSON on stdout and a
 * progress line on stderr.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { replayLog } from "../engine/mod.ts";
import { openConfiguredStore, progressBar } from "./open_configured_store.ts";

const USAGE = "Usage: deno task replay [--until <RFC 3339 instant>]";
let values: { until?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: { until: { type: "string" }, help: { type: "boolean", short: "h" } },
  }));
} catch (error) {
  console.error(`${(error as Error).message}\n${USAGE}`);
  Deno.exit(2);
}
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const until = values.until === undefined ? undefined : new Date(values.until);
if (values.until !== undefined && (!until || Number.isNaN(until.getTime()))) {
  console.error(`--until must be an RFC 3339 instant, got ${JSON.stringify(values.until)}`);
  Deno.exit(2);
}
const store = await openConfiguredStore();
try {
  const result = await replayLog(store, { until, onProgress: progressBar("replay") });
  console.error(`\nfolded ${result.events} events in ${Math.round(result.elapsedMs)} ms`);
  console.log(
    JSON.stringify({ at: (until ?? new Date()).toISOString(), ...result.state }, null, 2),
  );
} finally {
  await store.close();
}
