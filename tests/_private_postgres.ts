/**
 * Test helper: a private PostgreSQL cluster (Debian's binaries in
 * `/usr/lib/postgresql/<version>/bin`, or `PG_BIN_DIR`) in a temporary folder, on its own
 * port, with trust authentication, that a test may stop, start and restart with `pg_ctl`
 * without touching the shared server other tests use.
 *
 * PostgreSQL refuses to run as root: when the test runs as root, `initdb` and `pg_ctl`
 * run as the `postgres` user (`runuser`), which owns the folder.
 *
 * @module
 */

/**
 * The folder holding `initdb` and `pg_ctl`, or null when PostgreSQL's server binaries are
 * not installed.
 * @returns `PG_BIN_DIR` when set, else the newest `/usr/lib/postgresql/<version>/bin`.
 */
export function findPostgresBin(): string | null {
  const configured = Deno.env.get("PG_BIN_DIR");
  const candidates: string[] = configured ? [configured] : [];
  if (!configured) {
    try {
      const versions = [...Deno.readDirSync("/usr/lib/postgresql")]
        .map((e) => e.name)
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a));
      candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
    } catch {
      // not installed there
    }
  }
  for (const dir of candidates) {
    try {
      if (Deno.statSync(`${dir}/initdb`).isFile && Deno.statSync(`${dir}/pg_ctl`).isFile) {
        return dir;
      }
    } catch {
      // not this one
    }
  }
  return null;
}

/** A running private cluster. */
export interface PrivatePostgres {
  /** Superuser URL of its `postgres` database (trust authentication, no password). */
  url: string;
  port: number;
  /** `pg_ctl stop -m <mode>`: resolves once the server is down. */
  stop(mode?: "smart" | "fast" | "immediate"): Promise<void>;
  /** `pg_ctl start`: resolves once it accepts connections. */
  start(): Promise<void>;
  /** `pg_ctl restart -m <mode>`: resolves once it accepts connections again. */
  restart(mode?: "smart" | "fast" | "immediate"): Promise<void>;
  /** The server's log so far (for failure messages). */
  log(): Promise<string>;
  /** Stops the server (immediate) and removes its folder. */
  destroy(): Promise<void>;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function run(cmd: string[], asUser: string | null): Promise<string> {
  const [program, ...args] = asUser ? ["runuser", "-u", asUser, "--", ...cmd] : cmd;
  const out = await new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd.join(" ")} exited with ${out.code}:\n${text}`);
  return text;
}

/**
 * Creates a cluster (`initdb`, trust authentication, listening on 127.0.0.1 only, a free
 * port, its socket in its own folder) and starts it.
 *
 * Durability is relaxed for speed (`fsync = off`): the data survives a crash or restart
 * of the server processes, not of the machine.
 *
 * @param bin Folder of the binaries (see {@linkcode findPostgresBin}).
 * @returns The running cluster.
 * @throws {Error} With the command's output when `initdb` or `pg_ctl` fails.
 */
export async function startPrivatePostgres(bin: string): Promise<PrivatePostgres> {
  const asUser = Deno.uid() === 0 ? "postgres" : null;
  const dir = await Deno.makeTempDir({ prefix: "orch-private-pg-" });
  if (asUser) {
    const uid = Number((await run(["id", "-u", asUser], null)).trim());
    const gid = Number((await run(["id", "-g", asUser], null)).trim());
    await Deno.chown(dir, uid, gid);
  }
  const data = `${dir}/data`;
  const logFile = `${dir}/server.log`;
  const port = freePort();
  await run(
    [`${bin}/initdb`, "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
    asUser,
  );
  const conf = [
    "listen_addresses = '127.0.0.1'",
    `port = ${port}`,
    `unix_socket_directories = '${dir}'`,
    "fsync = off",
    "full_page_writes = off",
    "shared_buffers = 32MB",
    "max_connections = 40",
    "",
  ].join("\n");
  // Appended by the cluster's owner (the file is theirs).
  const confPath = `${data}/postgresql.conf`;
  if (asUser) {
    await Deno.writeTextFile(`${dir}/extra.conf`, conf);
    await run(["sh", "-c", `cat '${dir}/extra.conf' >> '${confPath}'`], asUser);
  } else {
    await Deno.writeTextFile(confPath, conf, { append: true });
  }
  const pgCtl = (...args: string[]) =>
    run([`${bin}/pg_ctl`, "-D", data, "-l", logFile, "-w", "-t", "60", ...args], asUser);
  const pg: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: async (mode = "fast") => void await pgCtl("-m", mode, "stop"),
    start: async () => void await pgCtl("start"),
    restart: async (mode = "fast") => void await pgCtl("-m", mode, "restart"),
    log: () => Deno.readTextFile(logFile).catch((e) => `(no log: ${e})`),
    async destroy() {
      await pgCtl("-m", "immediate", "stop").catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
  try {
    await pg.start();
  } catch (error) {
    console.error(await pg.log());
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  return pg;
}
