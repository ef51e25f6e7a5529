/**
 * The Deno adapter: serves the Hono app, upgrades `/ws/robot` to the robot protocol and
 * `/ws/realtime` to the realtime channels (`realtime_socket.ts`).
 *
 * @module
 */
import type { Hono } from "hono";
import type { Orchestrator } from "../engine/mod.ts";
import { realtimeSocket } from "./realtime_socket.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  app: Hono;
  orchestrator: Orchestrator;
  hostname: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /**
   * The configured API token (admin of org `default`) for `/ws/realtime`; without it only
   * provisioned API tokens are accepted there.
   */
  apiToken?: string;
  signal?: AbortSignal;
  onListen?: (addr: Deno.NetAddr) => void;
}

/** Starts the HTTP and WebSocket server. */
export function serve(options: ServeOptions): Deno.HttpServer<Deno.NetAddr> {
  const { app, orchestrator } = options;
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: options.onListen ?? (() => {}),
  }, (req, info) => {
    const url = new URL(req.url);
    if (url.pathname === "/ws/realtime") {
      return realtimeSocket(req, {
        orchestrator,
        apiToken: options.apiToken ?? crypto.randomUUID(),
      });
    }
    if (url.pathname === "/ws/robot") {
      if (!orchestrator.ready) {
        return Response.json(
          { error: { code: "starting", message: "Replaying the log; retry shortly" } },
          { status: 503 },
        );
      }
      if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return Response.json(
          { error: { code: "upgrade_required", message: "/ws/robot speaks WebSocket" } },
          { status: 426 },
        );
      }
      const authorization = req.headers.get("authorization");
      // Half-open sockets: Deno pings a connection idle for pingTimeout / 2 seconds and
      // closes it (1001) when no pong or other frame comes in the next pingTimeout / 2.
      const { socket, response } = Deno.upgradeWebSocket(req, {
        idleTimeout: orchestrator.core.config.pingTimeout,
      });
      const conn = orchestrator.sessions.open({
        send: (text) => {
          if (socket.readyState !== WebSocket.OPEN) throw new Error("Socket is not open");
          socket.send(text);
        },
        close: (code, reason) => {
          if (socket.readyState === WebSocket.OPEN) socket.close(code, reason);
        },
      }, authorization);
      socket.onmessage = (e) => {
        const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data);
        // Handlers answer bad frames themselves; whatever escapes is logged, never thrown
        // into the event loop (an unhandled rejection would end the process).
        conn.onMessage(text).catch((e) => console.error("robot frame failed:", e));
      };
      socket.onclose = () =>
        void conn.onClose().catch((e) => console.error("robot connection close failed:", e));
      socket.onerror = () => {};
      return response;
    }
    return app.fetch(req, { remoteAddr: info.remoteAddr });
  });
}
