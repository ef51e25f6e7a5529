// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * `main.ts` as a real process for tests: start it with an environment, wait until it has
 * replayed the log, call its API.
 *
 * @module
 */

import { startOrchestratorProcess } from "./_orchestrator_process.ts";

/** A running `main.ts`. */
export interface MainProcess {
  child: Deno.ChildProcess;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Everything it printed so far. */
  output: () => string;
  /** JSON request to its API with `token`. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
}

/**
 * Starts `deno run -A main.ts` on 127.0.0.1 and a free port with `env` added.
 * @returns once it printed that it listens and is ready.
 * @throws {Error} with its output when it exits before.
 */
export async function startMain(
  env: Record<string, string>,
  token: string,
): Promise<MainProcess> {
  const { child, url, output } = await startOrchestratorProcess(env);
  return {
    child,
    url,
    output,
    async api(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    },
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}
