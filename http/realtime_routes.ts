/**
 * The realtime channel: `GET /api/v1/stream`, the log as Server-Sent Events.
 *
 * Each event of the log is one SSE message whose `id` is its global position (the
 * checkpoint) and whose `data` is the event as `GET /api/v1/events` shows it. A client that
 * loses the connection reconnects with `Last-Event-ID` (browsers' `EventSource` does it by
 * itself) and gets every event after it, read gap-safely from the store, so nothing is
 * missed or skipped (the SSE rules: https://html.spec.whatwg.org/multipage/server-sent-events.html).
 *
 * Behind the app's auth middleware, which takes the token from `Authorization: Bearer` or,
 * for this route only (`EventSource` cannot set headers), from `?token=`. A client sees
 * only its org's events (`engine/org_index.ts`); with `channels` only those on the
 * realtime channels it names (`realtime_channels.ts`).
 *
 * @module
 */
import { Hono } from "hono";
import type { Orchestrator } from "../engine/mod.ts";
import { eventJson } from "./app.ts";
import { onTokenRevoked, principal } from "./auth.ts";
import { ChannelReader, MAX_CHANNELS, refuseChannel } from "./realtime_channels.ts";
import { validQuery } from "./validation.ts";
import { StreamQuery } from "./admin_schemas.ts";

/** Options of {@linkcode realtimeRoutes}. */
export interface RealtimeOptions {
  orchestrator: Orchestrator;
  /** Unused: the app's auth middleware checks tokens (kept for callers). */
  apiToken?: string;
  /**
   * Milliseconds without any message after which a `: ping` comment is sent, so that
   * proxies keep the connection and a vanished client is noticed.
   * @default 15000
   */
  keepAliveMs?: number;
  /**
   * Milliseconds between checks that the orchestrator still runs; a stream ends within this
   * time after `orchestrator.stop()`, so that the server can shut down.
   * @default 500
   */
  stopCheckMs?: number;
  /**
   * Events read from the store per batch.
   * @default 500
   */
  batchSize?: number;
  /**
   * Milliseconds a browser waits before reconnecting (the SSE `retry` field).
   * @default 2000
   */
  retryMs?: number;
}

/**
 * Tells whether the orchestrator applied events since the last `take()`, and waits for it.
 * Listens from construction on, so an event applied between a read and a wait is not lost.
 */
export class AppliedSignal {
  #dirty = true;
  #wake: (() => void) | null = null;
  readonly close: () => void;

  constructor(orch: Orchestrator) {
    this.close = orch.core.onEvents(() => {
      this.#dirty = true;
      this.#wake?.();
    });
  }

  /** Sets the flag, e.g. when a read may have left events behind. */
  mark(): void {
    this.#dirty = true;
  }

  /** True when events were applied since the last call; resets the flag. */
  take(): boolean {
    const dirty = this.#dirty;
    this.#dirty = false;
    return dirty;
  }

  /** Resolves when events are applied, after `ms` milliseconds, or when `signal` aborts. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#dirty || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", finish);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      signal.addEventListener("abort", finish);
      this.#wake = finish;
    });
  }
}

function parseCheckpoint(value: string | undefined): number | null | "invalid" {
  if (value === undefined || value.trim() === "") return null;
  if (!/^\d{1,16}$/.test(value.trim())) return "invalid";
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : "invalid";
}

/**
 * The route `GET /api/v1/stream[?after=<position>][&channels=<c1,c2>][&token=<API token>]`:
 * Server-Sent Events.
 *
 * - `channels`: comma-separated `robots:{org_id}`, `jobs:{org_id}`, `progress:{job_id}` of
 *   the caller's org (400 not a channel, 403 another org's channel, 404 a job that is not
 *   the caller's); each message's `data` then also holds `channels`, those it is on.
 *   Without `channels`: every event of the caller's org.
 * - Starts after `Last-Event-ID` (header), else `after`, else the read models' current
 *   checkpoint (live events only). 400 when either is not a non-negative integer.
 * - First message: `event: ready`, `data: {checkpoint, resumed}` with `id` the checkpoint it
 *   starts after. Then one default (`message`) event per log event, `id` its global position
 *   and `data` the event JSON (`global_position, stream_id, stream_version, event_id, type,
 *   data, metadata, recorded_at`). When the position to resume from is not in the log
 *   (another database), `event: reset` `{checkpoint}` tells the client to reload its views;
 *   the stream goes on from the current checkpoint.
 * - `: ping` comments keep an idle connection open; the stream ends when the orchestrator
 *   stops.
 *
 * @returns a Hono app with this route only.
 */
export function realtimeRoutes(options: RealtimeOptions): Hono {
  const { orchestrator: orch } = options;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const stopCheckMs = options.stopCheckMs ?? 500;
  const batchSize = options.batchSize ?? 500;
  const retryMs = options.retryMs ?? 2000;
  const app = new Hono();

  app.get("/api/v1/stream", (c) => {
    const who = principal(c);
    const query = validQuery(c, StreamQuery);
    const channelsParam = query.channels;
    const channels = channelsParam === undefined || channelsParam === ""
      ? []
      : [...new Set(channelsParam.split(","))];
    if (channels.length > MAX_CHANNELS) {
      return c.json({
        error: {
          code: "invalid_request",
          field: "channels",
          message: `At most ${MAX_CHANNELS} channels`,
        },
      }, 400);
    }
    for (const channel of channels) {
      const refusal = refuseChannel(orch, who, channel);
      if (refusal) {
        const status = refusal.code === "invalid_channel"
          ? 400
          : refusal.code === "forbidden"
          ? 403
          : 404;
        const code = refusal.code === "invalid_channel" ? "invalid_request" : refusal.code;
        return c.json({ error: { code, field: "channels", message: refusal.message } }, status);
      }
    }
    const lastEventId = parseCheckpoint(c.req.header("last-event-id"));
    const after = parseCheckpoint(query.after);
    for (const [field, v] of [["Last-Event-ID", lastEventId], ["after", after]] as const) {
      if (v === "invalid") {
        return c.json({
          error: {
            code: "invalid_request",
            field,
            message: `${field} must be a global position (an integer >= 0)`,
          },
        }, 400);
      }
    }
    const resumed = lastEventId !== null;
    const reader = new ChannelReader(orch, who, {
      after: (lastEventId ?? after ?? orch.core.position) as number,
      batchSize,
    });
    for (const channel of channels) reader.channels.add(channel);
    const encoder = new TextEncoder();
    const abort = new AbortController();
    // A revoked token ends its stream (its REST calls are refused from then on too).
    const offRevoked = onTokenRevoked(orch, who.token_id, () => abort.abort());
    abort.signal.addEventListener("abort", offRevoked, { once: true });
    let lastWrite = Date.now();
    let first = true;
    const applied = new AppliedSignal(orch);

    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const send = (text: string) => {
          controller.enqueue(encoder.encode(text));
          lastWrite = Date.now();
        };
        if (first) {
          first = false;
          send(`retry: ${retryMs}\n`);
          send(
            `event: ready\nid: ${reader.cursor}\ndata: ${
              JSON.stringify({
                checkpoint: reader.cursor,
                resumed,
                org_id: who.org_id,
                channels,
              })
            }\n\n`,
          );
          return;
        }
        // Each pull sends something (events or a ping) or ends the stream.
        for (;;) {
          if (!orch.ready || abort.signal.aborted) {
            applied.close();
            controller.close();
            return;
          }
          if (applied.take()) {
            let read;
            try {
              read = await reader.read({ all: channels.length === 0 });
            } catch (error) {
              if (!(error instanceof RangeError)) {
                // The store failed: end this stream (the client resumes from its last id).
                applied.close();
                throw error;
              }
              reader.cursor = orch.core.position;
              send(
                `event: reset\nid: ${reader.cursor}\ndata: ${
                  JSON.stringify({ checkpoint: reader.cursor })
                }\n\n`,
              );
              return;
            }
            // A full batch: more may be waiting.
            if (read.full) applied.mark();
            if (read.events.length) {
              let chunk = "";
              for (const { event: e, channels: on } of read.events) {
                const json = channels.length ? { ...eventJson(e), channels: on } : eventJson(e);
                chunk += `id: ${e.globalPosition}\ndata: ${JSON.stringify(json)}\n\n`;
              }
              send(chunk);
              return;
            }
          }
          if (Date.now() - lastWrite >= keepAliveMs) {
            send(": ping\n\n");
            applied.mark(); // re-read now and then, whatever woke us or not
            return;
          }
          await applied.wait(
            Math.min(stopCheckMs, keepAliveMs - (Date.now() - lastWrite)),
            abort.signal,
          );
        }
      },
      cancel: () => {
        abort.abort();
        applied.close();
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      },
    });
  });
  return app;
}
