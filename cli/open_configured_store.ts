/**
 * Opens the store the orchestrator is configured with (same environment as `main.ts`).
 * @module
 */
import { loadConfig, lockDataDir } from "../config/mod.ts";
import { openEventStore, type SqlEventStore } from "../events/mod.ts";

/** Opens the configured event store (PostgreSQL when `DATABASE_URL` is set, else PGlite). */
export async function openConfiguredStore(): Promise<SqlEventStore> {
  const config = loadConfig((name) => Deno.env.get(name));
  // PGlite is one process's database: refuse while the orchestrator has the folder.
  if (!config.databaseUrl) await lockDataDir(config.dataDir);
  return await openEventStore({
    databaseUrl: config.databaseUrl ?? undefined,
    dataDir: config.dataDir,
    schema: config.databaseSchema ?? undefined,
    pooler: config.databasePooler,
  });
}

/** A progress line on stderr, redrawn in place (for long replays). */
export function progressBar(label: string): (n: number) => void {
  let last = 0;
  return (n) => {
    const now = performance.now();
    if (now - last < 200) return;
    last = now;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r${label}: ${n.toLocaleString("en")} events`));
  };
}
