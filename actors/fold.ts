/**
 * Replaying and deciding with pure XState v5 machines.
 *
 * An actor's state is never a live actor: it is the plain snapshot (state value, context,
 * status) obtained by folding the stream's events through the machine's transition
 * function — compiled from the machine by {@linkcode compileMachine}, and proven equal to
 * xstate's pure `transition(machine, snapshot, event)` by a test. A command is accepted
 * when xstate says the machine can take its event in the current snapshot; the caller then
 * appends that event with the stream's version as the expected version.
 *
 * @module
 */
import {
  type AnyActorScope,
  type AnyStateMachine,
  type ContextFrom,
  createActor,
  type SnapshotFrom,
} from "xstate";
import { compileMachine, type FoldedSnapshot } from "./compiled_machine.ts";

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

/** An actor's folded snapshot and the stream version it reflects (0 = no events). */
export interface ActorState<M extends AnyStateMachine> {
  snapshot: FoldedSnapshot<ContextFrom<M>>;
  version: number;
}

/** The state of an actor whose stream has no events (shared and frozen: never mutate). */
export function initialState<M extends AnyStateMachine>(machine: M): ActorState<M> {
  return { snapshot: compileMachine(machine).initial, version: 0 };
}

/**
 * Applies one recorded event to a state, with the machine's compiled transition function
 * (equal to xstate's `transition()`, see `compiled_machine.ts`). Events that the machine
 * refuses are kept out (the state is returned unchanged but the version still advances),
 * so a replay never stops on history written by an older machine.
 */
export function applyEvent<M extends AnyStateMachine>(
  machine: M,
  state: ActorState<M>,
  event: { type: string; data: Record<string, unknown> },
  version: number,
): ActorState<M> {
  const machineEvent = { ...event.data, type: event.type };
  const next = compileMachine(machine).step(state.snapshot, machineEvent);
  return { snapshot: next ?? state.snapshot, version };
}

/** Folds a whole stream (in version order) into the actor's state. */
export function replay<M extends AnyStateMachine>(
  machine: M,
  events: Iterable<{ type: string; data: Record<string, unknown>; streamVersion: number }>,
  from: ActorState<M> = initialState(machine),
): ActorState<M> {
  let state = from;
  for (const e of events) {
    if (e.streamVersion <= state.version) continue;
    state = applyEvent(machine, state, e, e.streamVersion);
  }
  return state;
}

/**
 * Checks with xstate itself that the machine accepts an event in the current state and
 * returns the next snapshot: commands are decided by the machine's interpreter, history
 * is folded by its compiled transition function.
 * @throws {InvalidTransitionError} when it does not.
 */
export function decide<M extends AnyStateMachine>(
  machine: M,
  streamId: string,
  state: ActorState<M>,
  event: { type: string } & Record<string, unknown>,
): FoldedSnapshot<ContextFrom<M>> {
  const snapshot = machine.resolveState({
    value: state.snapshot.value,
    context: state.snapshot.context,
  } as never) as unknown as { can(e: unknown): boolean };
  if (!snapshot.can(event)) {
    throw new InvalidTransitionError(streamId, state.snapshot.value, event.type);
  }
  const [next] = transition(machine, snapshot as SnapshotFrom<M>, event as never);
  const n = next as unknown as FoldedSnapshot<ContextFrom<M>>;
  return { value: n.value, context: n.context, status: n.status === "done" ? "done" : "active" };
}
