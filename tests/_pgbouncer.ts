/**
 * Test helper: a private PgBouncer (Debian's `pgbouncer` package) in transaction pooling
 * mode, in front of the test PostgreSQL server, on its own port with its own config file in
 * a temporary folder. Started and stopped by the test.
 *
 * @module
 */
import { TEST_DATABASE_URL } from "./_harness.ts";

/** Where Debian installs the binary (`/usr/sbin` is not on every PATH). */
const CANDIDATES = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"];

/**
 * Path of the `pgbouncer` binary, or null when it is not installed.
 * @returns The first candidate (or `PGBOUNCER_BIN`) that exists.
 */
export function findPgbouncer(): string | null {
  const configured = Deno.env.get("PGBOUNCER_BIN");
  for (const path of configured ? [configured] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not there
    }
  }
  return null;
}

/** A running PgBouncer. */
export interface Pgbouncer {
  /** `postgres://…` URL of the test database through the pooler. */
  url: string;
  /** What PgBouncer wrote on stderr so far (for failure messages). */
  log(): string;
  /** Stops it (SIGTERM) and removes its folder. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startPgbouncer}. */
export interface StartPgbouncerOptions {
  /** Server connections per database and user pair. @default 2 */
  poolSize?: number;
  /** Gives up waiting for "process up" after this many milliseconds. @default 20000 */
  timeoutMs?: number;
}

/**
 * Starts PgBouncer with `pool_mode = transaction` and `auth_type = trust`, in front of the
 * server of `TEST_DATABASE_URL`, and resolves once it listens.
 *
 * @param binary Path of the binary (see {@linkcode findPgbouncer}).
 * @param options Pool size and start timeout.
 * @returns The running pooler.
 * @throws {Error} With PgBouncer's output when it exits or does not come up in time.
 */
export async function startPgbouncer(
  binary: string,
  options: StartPgbouncerOptions = {},
): Promise<Pgbouncer> {
  const server = new URL(TEST_DATABASE_URL);
  const user = decodeURIComponent(server.username || "postgres");
  const database = server.pathname.slice(1) || "test";
  const dir = await Deno.makeTempDir({ prefix: "orch-pgbouncer-" });
  const port = freePort();
  const config = `${dir}/pgbouncer.ini`;
  await Deno.writeTextFile(`${dir}/userlist.txt`, `"${user}" ""\n`);
  await Deno.writeTextFile(
    config,
    [
      "[databases]",
      `${database} = host=${server.hostname} port=${server.port || 5432} dbname=${database} ` +
      `user=${user}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${dir}/userlist.txt`,
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize ?? 2}`,
      "max_client_conn = 200",
      "",
    ].join("\n"),
  );
  // PgBouncer refuses to run as root; it can switch user itself (-u), which must then read
  // its files.
  const asRoot = Deno.uid() === 0;
  if (asRoot) {
    await Deno.chmod(dir, 0o755);
    await Deno.chmod(config, 0o644);
    await Deno.chmod(`${dir}/userlist.txt`, 0o644);
  }
  const child = new Deno.Command(binary, {
    args: [...(asRoot ? ["-u", "postgres"] : []), config],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let output = "";
  let up: () => void = () => {};
  const ready = new Promise<void>((resolve) => (up = resolve));
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      output += decoder.decode(chunk, { stream: true });
      if (output.includes("process up")) up();
    }
  })();
  const exited = child.status.then((status) => {
    throw new Error(`pgbouncer exited with code ${status.code}:\n${output}`);
  });
  const timeoutMs = options.timeoutMs ?? 20_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`pgbouncer did not come up in ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
  });
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await reading;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await Promise.race([ready, exited, timedOut]);
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  exited.catch(() => {}); // after a deliberate stop
  return {
    url: `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`,
    log: () => output,
    stop,
  };
}

/** A TCP port that was free a moment ago (the OS picks it). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
