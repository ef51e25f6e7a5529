/**
 * The reference's RealtimeService channels, fed from the event log:
 *
 * | channel              | carries                                                                 |
 * | -------------------- | ----------------------------------------------------------------------- |
 * | `robots:{org_id}`    | every event of the org's robot streams (`robot.*`)                      |
 * | `jobs:{org_id}`      | the org's job status changes (every `job.*` but `progressed`, `logged`) |
 * | `progress:{job_id}`  | every event of one job (status, `job.progressed`, `job.logged`)         |
 *
 * plus admins' broadcasts (`realtime.broadcast` events, stream `realtime-<org_id>`) on the
 * channel they name. A token may only use its own org's channels and its org's jobs'
 * progress. A client follows one cursor (a global position of the log): every event after
 * it that is on one of its channels is delivered once, in log order, with the channels it
 * is on; resuming from the last position seen after a reconnect misses nothing.
 *
 * @module
 */
import type { Orchestrator } from "../engine/mod.ts";
import type { RecordedEvent } from "../events/mod.ts";
import type { Principal } from "./auth.ts";
import { orgFilter } from "./app.ts";

/** Prefix of the broadcast streams (`realtime-<org_id>`). */
export const BROADCAST_STREAM_PREFIX = "realtime-";

/** Most channels one client may follow. */
export const MAX_CHANNELS = 100;

/** Why a channel was refused: `invalid` (not a channel), `forbidden` (another org's), `not_found` (unknown job). */
export interface ChannelRefusal {
  code: "invalid_channel" | "forbidden" | "not_found";
  channel: string;
  message: string;
}

/**
 * Checks that `principal` may follow `channel`.
 * @returns null when it may, else why not.
 */
export function refuseChannel(
  orch: Orchestrator,
  principal: Principal,
  channel: string,
): ChannelRefusal | null {
  const m = /^(robots|jobs|progress):([A-Za-z0-9._:-]{1,128})$/.exec(channel);
  if (!m) {
    return {
      code: "invalid_channel",
      channel,
      message: `${
        JSON.stringify(channel)
      } is not a channel: robots:{org_id}, jobs:{org_id} or progress:{job_id}`,
    };
  }
  const [, kind, key] = m;
  if (kind === "progress") {
    const known = orch.core.jobs.get(key)?.snapshot.context.job_id != null;
    if (!known || orch.core.orgs.orgOf(`job-${key}`) !== principal.org_id) {
      return { code: "not_found", channel, message: `Job ${key} does not exist` };
    }
    return null;
  }
  if (key !== principal.org_id) {
    return {
      code: "forbidden",
      channel,
      message: `Channel ${channel} is not of your org (${principal.org_id})`,
    };
  }
  return null;
}

/** The channels an event of org `org` is on. */
export function eventChannels(e: RecordedEvent, org: string): string[] {
  if (e.streamId.startsWith("job-")) {
    const progress = `progress:${e.streamId.slice(4)}`;
    if (e.type === "job.progressed" || e.type === "job.logged") return [progress];
    return [`jobs:${org}`, progress];
  }
  if (e.streamId.startsWith("robot-")) return [`robots:${org}`];
  if (e.streamId.startsWith(BROADCAST_STREAM_PREFIX) && e.type === "realtime.broadcast") {
    const channel = (e.data as { channel?: unknown }).channel;
    return typeof channel === "string" ? [channel] : [];
  }
  return [];
}

/**
 * Records an admin's broadcast (`realtime.broadcast` `{org_id, channel, event, data}` on
 * stream `realtime-<org_id>`); subscribers of the channel get it like any event.
 * @returns its global position.
 * @throws {TypeError} when `event` is not a 1-100 character string.
 */
export async function broadcast(
  orch: Orchestrator,
  principal: Principal,
  input: { channel: string; event: unknown; data: unknown },
): Promise<number> {
  if (typeof input.event !== "string" || input.event.length < 1 || input.event.length > 100) {
    throw new TypeError("event must be a string of 1-100 characters");
  }
  const { events } = await orch.core.store.append([{
    streamId: BROADCAST_STREAM_PREFIX + principal.org_id,
    expectedVersion: "any",
    events: [{
      type: "realtime.broadcast",
      data: {
        org_id: principal.org_id,
        channel: input.channel,
        event: input.event,
        data: input.data ?? null,
        by: principal.token_id,
      },
      metadata: { schema_version: 1 },
    }],
  }]);
  return events[events.length - 1].globalPosition;
}

/** One event for a client, with the channels it is on. */
export interface ChannelEvent {
  event: RecordedEvent;
  channels: string[];
}

/**
 * Reads the log after a cursor for one client: the events of the caller's org on its
 * channels (or, with no channel set, every event of its org).
 */
export class ChannelReader {
  cursor: number;
  readonly channels = new Set<string>();
  #orch: Orchestrator;
  #principal: Principal;
  #batchSize: number;

  constructor(
    orch: Orchestrator,
    principal: Principal,
    options: { after: number; batchSize?: number },
  ) {
    this.#orch = orch;
    this.#principal = principal;
    this.cursor = options.after;
    this.#batchSize = options.batchSize ?? 500;
  }

  /**
   * The next batch after the cursor (moved past every event read, delivered or not).
   * @returns the events to deliver and whether the batch was full (more may wait).
   * @throws {RangeError} when the cursor is beyond the log (another database).
   */
  async read(options: { all?: boolean } = {}): Promise<{ events: ChannelEvent[]; full: boolean }> {
    const batch = await this.#orch.core.store.readAll({
      after: this.cursor,
      limit: this.#batchSize,
    });
    if (batch.length === 0) return { events: [], full: false };
    const last = batch[batch.length - 1].globalPosition;
    // The read models know the org of every stream up to here (new streams name theirs).
    await this.#orch.settled(last);
    const mine = orgFilter(this.#orch, this.#principal.org_id);
    const out: ChannelEvent[] = [];
    for (const e of batch) {
      if (!mine(e)) continue;
      if (options.all) {
        out.push({ event: e, channels: eventChannels(e, this.#principal.org_id) });
        continue;
      }
      const on = eventChannels(e, this.#principal.org_id).filter((c) => this.channels.has(c));
      if (on.length) out.push({ event: e, channels: on });
    }
    this.cursor = last;
    return { events: out, full: batch.length === this.#batchSize };
  }
}
