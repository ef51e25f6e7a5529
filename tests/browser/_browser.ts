/**
 * Browser tests' helpers: Debian's chromium driven by playwright-core (headless, fresh
 * profile), and an orchestrator that can be restarted on the same port (to cut the
 * dashboard's realtime connection for real).
 *
 * @module
 */
import { type BrowserContext, chromium } from "playwright-core";
import { type EngineConfig, Orchestrator } from "../../engine/mod.ts";
import type { SqlEventStore } from "../../events/mod.ts";
import { createApp, serve } from "../../http/mod.ts";

/** Where the browser is: Debian's package `chromium`. */
export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** Folder the tests save screenshots of each panel to (kept by CI as output). */
export const SCREENSHOTS = new URL("../../test-output/screenshots/", import.meta.url);

/** Starts headless chromium with a fresh profile; `close()` also removes the profile. */
export async function launchBrowser(): Promise<
  { context: BrowserContext; close(): Promise<void> }
> {
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** An orchestrator served on a fixed port, stoppable and restartable there. */
export interface ServedOrchestrator {
  orchestrator: Orchestrator;
  url: string;
  port: number;
  /** Stops the server and the orchestrator (not the store). */
  stop(): Promise<void>;
}

/**
 * Starts an orchestrator on `store` at 127.0.0.1:`port` (0: a free port).
 * @param options.apiToken the API token; `robotToken` the robots' token.
 */
export async function serveOrchestrator(
  store: SqlEventStore,
  options: { port: number; apiToken: string; robotToken: string; config?: Partial<EngineConfig> },
): Promise<ServedOrchestrator> {
  const orchestrator = new Orchestrator({
    store,
    robotToken: options.robotToken,
    config: options.config,
  });
  await orchestrator.start();
  const abort = new AbortController();
  const server = serve({
    app: createApp({ orchestrator, apiToken: options.apiToken }),
    orchestrator,
    hostname: "127.0.0.1",
    port: options.port,
    signal: abort.signal,
  });
  const port = server.addr.port;
  return {
    orchestrator,
    port,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      await orchestrator.stop();
      abort.abort();
      await server.finished;
    },
  };
}
