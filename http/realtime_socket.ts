/**
 * `/ws/realtime`: the realtime channels (`realtime_channels.ts`) over a WebSocket, JSON
 * text messages both ways.
 *
 * Client → server:
 * - `{type: "auth", token}`: first message, unless the token came with the upgrade
 *   (`Authorization: Bearer` or `?token=`); any role but `robot`.
 * - `{type: "subscribe", channels: [...], after?}`: follow channels; `after` (a global
 *   position) resumes from there for every followed channel (after a reconnect: the last
 *   `position` received). Without `after`, the first subscription starts at the current
 *   checkpoint.
 * - `{type: "unsubscribe", channels: [...]}`
 * - `{type: "broadcast", channel, event, data?}`: admins only; recorded in the log
 *   (`realtime.broadcast`) and delivered to the channel's subscribers like any event.
 * - `{type: "ping"}`
 *
 * Server → client:
 * - `{type: "ready", org_id, role, checkpoint}` once authenticated
 * - `{type: "subscribed", channels, checkpoint}`, `{type: "unsubscribed", channels}`
 * - `{type: "event", position, channels, event}`: `event` as `GET /api/v1/events` shows it;
 *   once per event, in log order, with the followed channels it is on
 * - `{type: "broadcasted", position}`, `{type: "pong"}`
 * - `{type: "reset", checkpoint}`: the position to resume from is not in this log; reload
 * - `{type: "error", code, message, channel?}`: `unauthorized` (then closed, 4001),
 *   `forbidden` (another org's channel, or a role that may not), `not_found` (a job that is
 *   not the caller's), `invalid_channel`, `invalid_message`
 *
 * @module
 */
import type { Orchestrator } from "../engine/mod.ts";
import { eventJson } from "./app.ts";
import { allowed, onTokenRevoked, type Principal, principalOf } from "./auth.ts";
import { AppliedSignal } from "./realtime_routes.ts";
import { broadcast, ChannelReader, MAX_CHANNELS, refuseChannel } from "./realtime_channels.ts";

/** Options of {@linkcode realtimeSocket}. */
export interface RealtimeSocketOptions {
  orchestrator: Orchestrator;
  /** The configured API token (admin of org `default`). */
  apiToken: string;
  /**
   * Milliseconds between checks that the orchestrator still runs and the socket is open.
   * @default 500
   */
  stopCheckMs?: number;
  /**
   * Milliseconds a client has to send `auth` when the upgrade carried no token.
   * @default 10000
   */
  authTimeoutMs?: number;
}

/** The messages a socket sends (a test double or `WebSocket`). */
interface Link {
  send(text: string): void;
  close(code: number, reason: string): void;
}

/**
 * One client's session: authentication, subscriptions and the feed, independent of the
 * runtime (the Deno adapter feeds it with {@linkcode RealtimeSession.onMessage}).
 */
export class RealtimeSession {
  #orch: Orchestrator;
  #apiToken: string;
  #link: Link;
  #who: Principal | null = null;
  #reader: ChannelReader | null = null;
  #applied: AppliedSignal | null = null;
  #offRevoked: () => void = () => {};
  #abort = new AbortController();
  /** Commands and reads run one at a time, in order. */
  #queue: Promise<void> = Promise.resolve();
  #stopCheckMs: number;

  constructor(link: Link, options: RealtimeSocketOptions) {
    this.#link = link;
    this.#orch = options.orchestrator;
    this.#apiToken = options.apiToken;
    this.#stopCheckMs = options.stopCheckMs ?? 500;
  }

  #send(message: Record<string, unknown>): void {
    try {
      this.#link.send(JSON.stringify(message));
    } catch {
      this.close();
    }
  }

  #error(code: string, message: string, extra: Record<string, unknown> = {}): void {
    this.#send({ type: "error", code, message, ...extra });
  }

  #serial(fn: () => Promise<void> | void): Promise<void> {
    const next = this.#queue.then(fn);
    this.#queue = next.catch((error) => {
      console.error("realtime session:", error);
      this.close();
    });
    return this.#queue;
  }

  /** Authenticates with a token (from the upgrade or an `auth` message). */
  authenticate(token: string): Promise<void> {
    return this.#serial(async () => {
      await this.#authenticate(token);
    });
  }

  async #authenticate(token: string): Promise<boolean> {
    const who = await principalOf(token, this.#orch, this.#apiToken);
    if (!who) {
      this.#error("unauthorized", "Missing or invalid token");
      this.#link.close(4001, "invalid token");
      return false;
    }
    if (!allowed("log", who)) {
      this.#error("forbidden", `Role ${who.role} may not use the realtime channels`);
      this.#link.close(4003, "forbidden");
      return false;
    }
    this.#who = who;
    this.#offRevoked = onTokenRevoked(this.#orch, who.token_id, () => {
      this.#error("unauthorized", "The token was revoked");
      this.#link.close(4001, "token revoked");
    });
    this.#reader = new ChannelReader(this.#orch, who, { after: this.#orch.core.position });
    this.#applied = new AppliedSignal(this.#orch);
    this.#send({
      type: "ready",
      org_id: who.org_id,
      role: who.role,
      checkpoint: this.#reader.cursor,
    });
    void this.#pump();
    return true;
  }

  /** Whether the client is authenticated. */
  get authenticated(): boolean {
    return this.#who !== null;
  }

  /** Handles one text message from the client. */
  onMessage(text: string): Promise<void> {
    let msg: Record<string, unknown>;
    try {
      const parsed = JSON.parse(text);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw 0;
      msg = parsed;
    } catch {
      this.#error("invalid_message", "Messages are JSON objects with a type");
      return Promise.resolve();
    }
    return this.#serial(async () => {
      if (this.#who) return await this.#command(msg);
      if (msg.type === "auth" && typeof msg.token === "string") {
        await this.#authenticate(msg.token);
        return;
      }
      this.#error("unauthorized", 'Send {type: "auth", token} first');
      this.#link.close(4001, "not authenticated");
    });
  }

  async #command(msg: Record<string, unknown>): Promise<void> {
    const who = this.#who!;
    const reader = this.#reader!;
    const list = (v: unknown): string[] | null =>
      Array.isArray(v) && v.length <= MAX_CHANNELS && v.every((x) => typeof x === "string")
        ? v as string[]
        : typeof v === "string"
        ? [v]
        : null;
    switch (msg.type) {
      case "subscribe": {
        const channels = list(msg.channels ?? msg.channel);
        if (!channels) {
          return this.#error(
            "invalid_message",
            `channels must be an array of at most ${MAX_CHANNELS} channel names`,
          );
        }
        const after = msg.after;
        if (after !== undefined && !(Number.isSafeInteger(after) && (after as number) >= 0)) {
          return this.#error(
            "invalid_message",
            "after must be a global position (an integer >= 0)",
          );
        }
        const accepted: string[] = [];
        for (const channel of channels) {
          const refusal = refuseChannel(this.#orch, who, channel);
          if (refusal) this.#error(refusal.code, refusal.message, { channel });
          else accepted.push(channel);
        }
        if (accepted.length === 0) return;
        if (after !== undefined) reader.cursor = after as number;
        else if (reader.channels.size === 0) reader.cursor = this.#orch.core.position;
        for (const channel of accepted) reader.channels.add(channel);
        this.#applied!.mark();
        return this.#send({ type: "subscribed", channels: accepted, checkpoint: reader.cursor });
      }
      case "unsubscribe": {
        const channels = list(msg.channels ?? msg.channel);
        if (!channels) return this.#error("invalid_message", "channels must be an array");
        for (const channel of channels) reader.channels.delete(channel);
        return this.#send({ type: "unsubscribed", channels });
      }
      case "broadcast": {
        if (who.role !== "admin") {
          return this.#error("forbidden", "Only admins may broadcast");
        }
        const channel = typeof msg.channel === "string" ? msg.channel : "";
        const refusal = refuseChannel(this.#orch, who, channel);
        if (refusal) return this.#error(refusal.code, refusal.message, { channel });
        try {
          const position = await broadcast(this.#orch, who, {
            channel,
            event: msg.event,
            data: msg.data,
          });
          return this.#send({ type: "broadcasted", position });
        } catch (error) {
          if (error instanceof TypeError || error instanceof RangeError) {
            return this.#error("invalid_message", error.message);
          }
          throw error;
        }
      }
      case "ping":
        return this.#send({ type: "pong" });
      default:
        return this.#error(
          "invalid_message",
          `Unknown type ${JSON.stringify(msg.type)}: subscribe, unsubscribe, broadcast or ping`,
        );
    }
  }

  async #pump(): Promise<void> {
    const applied = this.#applied!;
    const reader = this.#reader!;
    while (!this.#abort.signal.aborted && this.#orch.ready) {
      if (applied.take() && reader.channels.size > 0) {
        await this.#serial(async () => {
          try {
            const read = await reader.read();
            if (read.full) applied.mark();
            for (const { event, channels } of read.events) {
              this.#send({
                type: "event",
                position: event.globalPosition,
                channels,
                event: eventJson(event),
              });
            }
          } catch (error) {
            if (!(error instanceof RangeError)) throw error;
            reader.cursor = this.#orch.core.position;
            this.#send({ type: "reset", checkpoint: reader.cursor });
          }
        });
        continue;
      }
      await applied.wait(this.#stopCheckMs, this.#abort.signal);
    }
    if (!this.#abort.signal.aborted) this.#link.close(1001, "orchestrator stopping");
    this.close();
  }

  /** Ends the session (the socket closed). */
  close(): void {
    this.#abort.abort();
    this.#offRevoked();
    this.#applied?.close();
  }
}

/**
 * Upgrades a request to `/ws/realtime` (Deno adapter): 503 while starting, 426 without an
 * upgrade, 401 when the upgrade carries a wrong token.
 */
export async function realtimeSocket(
  req: Request,
  options: RealtimeSocketOptions,
): Promise<Response> {
  const orch = options.orchestrator;
  const json = (status: number, code: string, message: string) =>
    Response.json({ error: { code, message } }, { status });
  if (!orch.ready) return json(503, "starting", "Replaying the log; retry shortly");
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return json(426, "upgrade_required", "/ws/realtime speaks WebSocket");
  }
  const header = req.headers.get("authorization");
  const token = header?.startsWith("Bearer ")
    ? header.slice(7)
    : new URL(req.url).searchParams.get("token");
  if (token && !(await principalOf(token, orch, options.apiToken))) {
    return json(401, "unauthorized", "Missing or invalid bearer token");
  }
  const { socket, response } = Deno.upgradeWebSocket(req);
  const session = new RealtimeSession({
    send: (text) => {
      if (socket.readyState !== WebSocket.OPEN) throw new Error("Socket is not open");
      socket.send(text);
    },
    close: (code, reason) => {
      if (socket.readyState === WebSocket.OPEN) socket.close(code, reason);
    },
  }, options);
  let timer: ReturnType<typeof setTimeout> | undefined;
  socket.onopen = () => {
    if (token) void session.authenticate(token);
    else {
      timer = setTimeout(() => {
        if (!session.authenticated) socket.close(4001, "no auth message");
      }, options.authTimeoutMs ?? 10_000);
    }
  };
  socket.onmessage = (e) => {
    const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data);
    session.onMessage(text).catch((error) => console.error("realtime message failed:", error));
  };
  socket.onclose = () => {
    clearTimeout(timer);
    session.close();
  };
  socket.onerror = () => {};
  return response;
}
