/**
 * Replaying and deciding with pure XState v5 machines.
 *
 * An actor's state is never a live actor: it is the snapshot obtained by folding the
 * stream's events through `transition(machine, snapshot, event)` (xstate's pure API, which
 * runs no actions). A command is accepted when the machine can take its event in the
 * current snapshot; the caller then appends that event with the stream's version as the
 * expected version.
 *
 * @module
 */
import {
  type AnyActorScope,
  type AnyStateMachine,
  createActor,
  initialTransition,
  type SnapshotFrom,
} from "xstate";

const scopes = new WeakMap<AnyStateMachine, AnyActorScope>();

/**
 * xstate's pure `transition(machine, snapshot, event)`, with one inert actor scope per
 * machine instead of a new actor and system per call (which made replay ~10× slower).
 * Sound for machines like ours, whose actions are only `assign` and which invoke and
 * spawn nothing: the scope is never written to, and actions to execute are dropped.
 */
function transition<M extends AnyStateMachine>(
  machine: M,
  snapshot: SnapshotFrom<M>,
  event: { type: string },
): [SnapshotFrom<M>] {
  let scope = scopes.get(machine);
  if (!scope) {
    const self = createActor(machine);
    scope = {
      self,
      defer: () => {},
      id: "",
      logger: () => {},
      sessionId: "",
      stopChild: () => {},
      system: self.system,
      emit: () => {},
      actionExecutor: () => {},
    } as unknown as AnyActorScope;
    scopes.set(machine, scope);
  }
  return [machine.transition(snapshot, event, scope) as SnapshotFrom<M>];
}

/** Thrown when a command's event is not accepted by the machine in its current state. */
export class InvalidTransitionError extends Error {
  override name = "InvalidTransitionError";
  /** The stream (`job-<id>`, `robot-<id>`). */
  readonly streamId: string;
  /** The state the actor was in. */
  readonly state: string;
  /** The event type that was refused. */
  readonly eventType: string;
  constructor(streamId: string, state: string, eventType: string) {
    super(`${streamId} is ${state}: ${eventType} is not allowed in that state`);
    this.streamId = streamId;
    this.state = state;
    this.eventType = eventType;
  }
}

/** An actor's snapshot and the stream version it reflects (0 = no events). */
export interface ActorState<M extends AnyStateMachine> {
  snapshot: SnapshotFrom<M>;
  version: number;
}

/** The state of an actor whose stream has no events. */
export function initialState<M extends AnyStateMachine>(machine: M): ActorState<M> {
  const [snapshot] = initialTransition(machine as AnyStateMachine);
  return { snapshot: snapshot as SnapshotFrom<M>, version: 0 };
}

/**
 * Applies one recorded event to a state. Events that the machine refuses are kept out
 * (the state is returned unchanged but the version still advances), so a replay never
 * stops on history written by an older machine.
 */
export function applyEvent<M extends AnyStateMachine>(
  machine: M,
  state: ActorState<M>,
  event: { type: string; data: Record<string, unknown> },
  version: number,
): ActorState<M> {
  const machineEvent = { ...event.data, type: event.type };
  const [next] = transition(machine, state.snapshot, machineEvent as never);
  return { snapshot: next as SnapshotFrom<M>, version };
}

/** Folds a whole stream (in version order) into the actor's state. */
export function replay<M extends AnyStateMachine>(
  machine: M,
  events: Iterable<{ type: string; data: Record<string, unknown>; streamVersion: number }>,
): ActorState<M> {
  let state = initialState(machine);
  for (const e of events) state = applyEvent(machine, state, e, e.streamVersion);
  return state;
}

/**
 * Checks that the machine accepts an event in the current state and returns the next
 * snapshot.
 * @throws {InvalidTransitionError} when it does not.
 */
export function decide<M extends AnyStateMachine>(
  machine: M,
  streamId: string,
  state: ActorState<M>,
  event: { type: string } & Record<string, unknown>,
): SnapshotFrom<M> {
  const snapshot = state.snapshot as unknown as {
    can(e: unknown): boolean;
    value: unknown;
  };
  if (!snapshot.can(event)) {
    throw new InvalidTransitionError(streamId, String(snapshot.value), event.type);
  }
  const [next] = transition(machine, state.snapshot, event as never);
  return next as SnapshotFrom<M>;
}
