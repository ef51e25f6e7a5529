// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * `main.ts` as a real process for tests: start it with an environment, wait until it has
 * replayed the log, call its API.
 *
 * @module
 */

const MAIN = new URL("../main.ts", import.meta.url).pathname;

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
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: { ...env, ORCHESTRATOR_HOST: "127.0.0.1", ORCHESTRATOR_PORT: "0", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const url = await new Promise<string>((resolve, reject) => {
    const reader = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) {
        text += decoder.decode(chunk);
        const m = text.match(/listening on (http:\/\/[\d.]+:\d+)/);
        if (m && /; ready/.test(text)) resolve(m[1]);
      }
      reject(new Error(`orchestrator exited before listening:\n${text}`));
    };
    reader(child.stdout).catch(reject);
    reader(child.stderr).catch(() => {});
  });
  return {
    child,
    url,
    output: () => text,
    async api(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}` },
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
