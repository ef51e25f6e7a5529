/**
 * Command line of the robot (`deno task robot …`).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Usage text printed on `--help` and on a usage error. */
export const USAGE: string =
  `Usage: deno task robot --url ws://HOST:PORT/ws/robot[,ws://HOST2:PORT/ws/robot…] --token TOKEN --name NAME
       [--robot-id ID] [--capabilities a,b] [--tags x,y] [--max-jobs N] [--environment ENV]

  --url           orchestrator robot endpoint (ws:// or wss://); several nodes of one
                  cluster separated by commas, tried in turn at each reconnect;
                  default: $ORCHESTRATOR_URLS
  --token         robot token; default: $ROBOT_TOKEN, then $ORCHESTRATOR_ROBOT_TOKEN
  --name          robot name
  --robot-id      stable robot id (default: the name)
  --capabilities  comma-separated capabilities
  --tags          comma-separated tags
  --max-jobs      jobs run at once (integer ≥ 1, default 1)
  --environment   environment name sent at registration
  --help          show this text`;

/** What the command line asks for. */
export interface RobotCliConfig {
  /** The first of `urls`. */
  url: string;
  /**
   * `--url` (else `$ORCHESTRATOR_URLS`) split on commas: the robot endpoints (`ws://` or
   * `wss://`) of the orchestrator nodes, tried in turn at each reconnect.
   */
  urls: string[];
  /** `--token`, else `$ROBOT_TOKEN`, else `$ORCHESTRATOR_ROBOT_TOKEN`. */
  token: string;
  /** `--name`. */
  name: string;
  /** `--robot-id`; the name when absent. */
  robotId?: string;
  /** `--capabilities`, split on commas. */
  capabilities: string[];
  /** `--tags`, split on commas. */
  tags: string[];
  /** `--max-jobs` (default 1). */
  maxConcurrentJobs: number;
  /** `--environment`. */
  environment?: string;
  /** `--help` was given: print {@linkcode USAGE} and exit. */
  help: boolean;
}

/** The command line is wrong; the message says what. */
export class CliUsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong, with the value seen.
   */
  constructor(message: string) {
    super(message);
    this.name = "CliUsageError";
  }
}

const list = (value: string | undefined): string[] =>
  (value ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");

/**
 * Parses the robot's arguments.
 *
 * @param args Arguments after the script name.
 * @param env Environment lookup for the token fallbacks. @default Deno.env.get
 * @returns The configuration.
 * @throws {CliUsageError} On unknown options, missing `--url`/`--token`/`--name`, a URL
 *   (of the comma-separated list) that is not `ws://` or `wss://`, or a `--max-jobs` that is not an integer ≥ 1.
 * @example Parse a command line
 * ```ts
 * import { parseRobotArgs } from "./cli_args.ts";
 * const cfg = parseRobotArgs(["--url", "ws://h:8765/ws/robot", "--token", "t", "--name", "r"]);
 * console.log(cfg.maxConcurrentJobs); // 1
 * ```
 */
export function parseRobotArgs(
  args: string[],
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): RobotCliConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        name: { type: "string" },
        "robot-id": { type: "string" },
        capabilities: { type: "string" },
        tags: { type: "string" },
        "max-jobs": { type: "string" },
        environment: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new CliUsageError((e as Error).message);
  }
  const empty = {
    url: "",
    urls: [],
    token: "",
    name: "",
    capabilities: [],
    tags: [],
    maxConcurrentJobs: 1,
  };
  if (values.help) return { ...empty, help: true };
  const token = values.token ?? env("ROBOT_TOKEN") ?? env("ORCHESTRATOR_ROBOT_TOKEN");
  const urls = list(values.url ?? env("ORCHESTRATOR_URLS"));
  if (urls.length === 0) throw new CliUsageError("Missing --url (or ORCHESTRATOR_URLS)");
  for (const url of urls) {
    if (!/^wss?:\/\/[^/]/.test(url)) {
      throw new CliUsageError(`--url must start with ws:// or wss://, got ${url}`);
    }
    try {
      new URL(url);
    } catch {
      throw new CliUsageError(`--url is not a valid URL: ${url}`);
    }
  }
  if (!token) {
    throw new CliUsageError("Missing --token (or ROBOT_TOKEN / ORCHESTRATOR_ROBOT_TOKEN)");
  }
  if (!values.name) throw new CliUsageError("Missing --name");
  const rawMax = values["max-jobs"] ?? "1";
  const max = Number(rawMax);
  if (!/^\d+$/.test(rawMax.trim()) || !Number.isSafeInteger(max) || max < 1) {
    throw new CliUsageError(`--max-jobs must be an integer ≥ 1, got ${rawMax}`);
  }
  return {
    url: urls[0],
    urls,
    token,
    name: values.name,
    ...(values["robot-id"] ? { robotId: values["robot-id"] } : {}),
    capabilities: list(values.capabilities),
    tags: list(values.tags),
    maxConcurrentJobs: max,
    ...(values.environment ? { environment: values.environment } : {}),
    help: false,
  };
}
