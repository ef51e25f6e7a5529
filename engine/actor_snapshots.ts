/**
 * Loading one actor from the log, starting from its latest snapshot when there is a
 * usable one (same machine version, and its last event still in the log with the same id),
 * then folding only the stream's tail. A snapshot is only a cache: without one, or with
 * one that does not fit, the whole stream is folded and the result is the same.
 *
 * @module
 */
import {
  type ActorState,
  applyEvent,
  fastObject,
  type FoldedSnapshot,
  initialState,
  machineVersion,
  upcast,
} from "../actors/mod.ts";
import type { RecordedEvent, SqlEventStore } from "../events/mod.ts";
import type { AnyStateMachine, ContextFrom } from "xstate";

/** An actor loaded by {@linkcode loadActor}. */
export interface LoadedActor<M extends AnyStateMachine> {
  state: ActorState<M>;
  /** Stream version of the snapshot the load started from; 0 when it folded from the start. */
  snapshotVersion: number;
  /** Events read from the log and folded. */
  eventsFolded: number;
}

/**
 * The event with its data at the current schema version, or null when its category is
 * not folded by the actors.
 * @throws {UnknownEventTypeError} for an unknown job or robot event.
 */
export function upcastEvent(event: RecordedEvent): RecordedEvent | null {
  const data = upcast(event);
  if (data === null) return null;
  return data === event.data ? event : { ...event, data };
}

function fold<M extends AnyStateMachine>(
  machine: M,
  from: ActorState<M>,
  events: RecordedEvent[],
): ActorState<M> {
  let state = from;
  for (const recorded of events) {
    const event = upcastEvent(recorded);
    state = event === null
      ? { snapshot: state.snapshot, version: recorded.streamVersion }
      : applyEvent(machine, state, event, recorded.streamVersion);
  }
  return state;
}

/**
 * Loads a stream's actor: latest snapshot (if usable) plus the events after it.
 *
 * A snapshot is used only when it was taken by the same {@linkcode machineVersion} and the
 * log still holds, at its stream version, the event it was taken after (same event id);
 * an unreadable snapshot table counts as no snapshot.
 *
 * @throws {UnknownEventTypeError} for an event of the stream this version cannot fold.
 */
export async function loadActor<M extends AnyStateMachine>(
  store: SqlEventStore,
  machine: M,
  streamId: string,
): Promise<LoadedActor<M>> {
  let snapshot = null;
  try {
    snapshot = await store.snapshots.load(streamId, machineVersion(machine));
  } catch (error) {
    console.error(`snapshot of ${streamId} not readable, folding the whole stream:`, error);
  }
  if (snapshot) {
    const events = await store.readStream(streamId, { fromVersion: snapshot.streamVersion });
    if (events[0]?.eventId === snapshot.eventId) {
      const state = snapshot.state as unknown as FoldedSnapshot<ContextFrom<M>>;
      const from: ActorState<M> = {
        snapshot: {
          value: state.value,
          context: fastObject(state.context as object) as ContextFrom<M>,
          status: state.status,
        },
        version: snapshot.streamVersion,
      };
      return {
        state: fold(machine, from, events.slice(1)),
        snapshotVersion: snapshot.streamVersion,
        eventsFolded: events.length - 1,
      };
    }
  }
  const events = await store.readStream(streamId);
  return {
    state: fold(machine, initialState(machine), events),
    snapshotVersion: 0,
    eventsFolded: events.length,
  };
}

/**
 * Saves an actor's state as its stream's snapshot.
 *
 * @param lastEventId Id of the event at `state.version` (checked by {@linkcode loadActor}).
 */
export async function saveActorSnapshot<M extends AnyStateMachine>(
  store: SqlEventStore,
  machine: M,
  streamId: string,
  state: ActorState<M>,
  lastEventId: string,
): Promise<void> {
  await store.snapshots.save({
    streamId,
    machineVersion: machineVersion(machine),
    streamVersion: state.version,
    eventId: lastEventId,
    state: state.snapshot as unknown as Record<string, unknown>,
  });
}
