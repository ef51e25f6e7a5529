import assert from "node:assert/strict";
import { DEFAULT_ALERT_CONFIG, parseAlertConfig } from "./alert_config.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("parseAlertConfig() takes the defaults when nothing is set", () => {
  assert.deepEqual(parseAlertConfig(env({})), DEFAULT_ALERT_CONFIG);
});

Deno.test("parseAlertConfig() reads every variable", () => {
  const config = parseAlertConfig(env({
    ALERTS: "queue_backlog, robot_disconnected",
    ALERT_ROBOT_OFFLINE_AFTER: "0",
    ALERT_ERROR_RATE_THRESHOLD: "1",
    ALERT_ERROR_RATE_WINDOW: "60",
    ALERT_ERROR_RATE_MIN_JOBS: "3",
    ALERT_QUEUE_DEPTH: "0",
    ALERT_QUEUE_DURATION: "2.5",
    ALERT_WEBHOOK_URLS: "http://127.0.0.1:9/a, https://hooks.example/b?key=1",
    ALERT_WEBHOOK_MAX_ATTEMPTS: "3",
    ALERT_WEBHOOK_BACKOFF: "0.5",
    ALERT_WEBHOOK_MAX_BACKOFF: "0.5",
    ALERT_WEBHOOK_TIMEOUT: "2",
  }));
  assert.deepEqual(config, {
    kinds: ["robot_disconnected", "queue_backlog"],
    robotOfflineAfter: 0,
    errorRateThreshold: 1,
    errorRateWindow: 60,
    errorRateMinJobs: 3,
    queueDepth: 0,
    queueDuration: 2.5,
    webhookUrls: ["http://127.0.0.1:9/a", "https://hooks.example/b?key=1"],
    webhookMaxAttempts: 3,
    webhookBackoff: 0.5,
    webhookMaxBackoff: 0.5,
    webhookTimeout: 2,
  });
  assert.deepEqual(parseAlertConfig(env({ ALERTS: "none" })).kinds, []);
});

Deno.test("parseAlertConfig() refuses a bad value with a message naming the variable and the value", () => {
  const cases: [Record<string, string>, string][] = [
    [
      { ALERT_ERROR_RATE_THRESHOLD: "1.5" },
      'ALERT_ERROR_RATE_THRESHOLD must be a number greater than 0 and at most 1, got "1.5"',
    ],
    [
      { ALERT_ERROR_RATE_THRESHOLD: "0" },
      'ALERT_ERROR_RATE_THRESHOLD must be a number greater than 0 and at most 1, got "0"',
    ],
    [
      { ALERT_ERROR_RATE_WINDOW: "five minutes" },
      'ALERT_ERROR_RATE_WINDOW must be a number greater than 0, got "five minutes"',
    ],
    [
      { ALERT_ERROR_RATE_MIN_JOBS: "2.5" },
      'ALERT_ERROR_RATE_MIN_JOBS must be an integer >= 1, got "2.5"',
    ],
    [{ ALERT_QUEUE_DEPTH: "-1" }, 'ALERT_QUEUE_DEPTH must be an integer >= 0, got "-1"'],
    [
      { ALERT_QUEUE_DURATION: "Infinity" },
      'ALERT_QUEUE_DURATION must be a number >= 0, got "Infinity"',
    ],
    [
      { ALERT_ROBOT_OFFLINE_AFTER: "-5" },
      'ALERT_ROBOT_OFFLINE_AFTER must be a number >= 0, got "-5"',
    ],
    [
      { ALERT_WEBHOOK_MAX_ATTEMPTS: "0" },
      'ALERT_WEBHOOK_MAX_ATTEMPTS must be an integer >= 1 and at most 100, got "0"',
    ],
    [
      { ALERT_WEBHOOK_BACKOFF: "10", ALERT_WEBHOOK_MAX_BACKOFF: "5" },
      'ALERT_WEBHOOK_MAX_BACKOFF must be >= ALERT_WEBHOOK_BACKOFF (10), got "5"',
    ],
    [
      { ALERT_WEBHOOK_URLS: "http://ok.example/a,ftp://files.example/x" },
      'ALERT_WEBHOOK_URLS must be a comma-separated list of http or https URLs, got "ftp://files.example/x"',
    ],
    [
      { ALERT_WEBHOOK_URLS: "not a url" },
      'ALERT_WEBHOOK_URLS must be a comma-separated list of http or https URLs, got "not a url"',
    ],
    [
      { ALERTS: "robot_disconnected,disk_full" },
      'ALERTS must be "none" or a comma-separated list of robot_disconnected, job_timeout, high_error_rate, queue_backlog, got "disk_full"',
    ],
  ];
  for (const [vars, message] of cases) {
    assert.throws(() => parseAlertConfig(env(vars)), (e: unknown) => {
      assert.ok(e instanceof RangeError, JSON.stringify(vars));
      assert.equal(e.message, message);
      return true;
    });
  }
});
