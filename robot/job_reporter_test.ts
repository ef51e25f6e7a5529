import assert from "node:assert/strict";
import { JobReporter } from "./job_reporter.ts";
import type { JobProgress, LogEntry } from "./job_result.ts";

const entry = (message: string): LogEntry => ({
  timestamp: "2026-01-01T00:00:00.000Z",
  level: "info",
  message,
});

Deno.test("JobReporter sends a full batch at once and the rest on flush", () => {
  const batches: string[][] = [];
  const reporter = new JobReporter({
    sendLogs: (e) => batches.push(e.map((x) => x.message)),
    sendProgress: () => {},
    batchSize: 2,
  });
  for (const m of ["a", "b", "c"]) reporter.log(entry(m));
  assert.deepEqual(batches, [["a", "b"]]);
  reporter.close();
  assert.deepEqual(batches, [["a", "b"], ["c"]]);
  reporter.log(entry("late"));
  reporter.close();
  assert.equal(batches.length, 2);
});

Deno.test("JobReporter sends buffered entries after the flush interval", async () => {
  const sent = Promise.withResolvers<string[]>();
  const reporter = new JobReporter({
    sendLogs: (e) => sent.resolve(e.map((x) => x.message)),
    sendProgress: () => {},
    flushIntervalMs: 5,
  });
  reporter.log(entry("a"));
  reporter.log(entry("b"));
  assert.deepEqual(await sent.promise, ["a", "b"]);
  reporter.close();
});

Deno.test("JobReporter throttles progress to the latest value per interval", async () => {
  let now = 1000;
  const sent: JobProgress[] = [];
  const trailing = Promise.withResolvers<void>();
  const reporter = new JobReporter({
    sendLogs: () => {},
    sendProgress: (p) => {
      sent.push(p);
      if (sent.length === 2) trailing.resolve();
    },
    progressIntervalMs: 200,
    now: () => now,
  });
  reporter.progress({ progress: 10 });
  reporter.progress({ progress: 20 });
  reporter.progress({ progress: 30 });
  assert.deepEqual(sent, [{ progress: 10 }]);
  now += 200;
  await trailing.promise;
  assert.deepEqual(sent, [{ progress: 10 }, { progress: 30 }]);
  reporter.close();
});

Deno.test("JobReporter cuts very long messages", () => {
  const batches: LogEntry[][] = [];
  const reporter = new JobReporter({
    sendLogs: (e) => batches.push(e),
    sendProgress: () => {},
    maxMessageChars: 4,
  });
  reporter.log(entry("abcdefgh"));
  reporter.close();
  assert.equal(batches[0][0].message, "abcd… (truncated)");
});
