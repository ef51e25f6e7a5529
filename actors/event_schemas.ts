/**
 * Event versioning: every event type the actors and projections understand, with its
 * current schema version, and the upcasters that turn an old version into the current
 * one when it is read. The version an event was written with is `metadata.schema_version`
 * (absent = 1).
 *
 * An event of a category the projections own (`job.*`, `robot.*`) whose type is not
 * known stops the fold with {@linkcode UnknownEventTypeError}: skipping it would silently
 * build wrong read models. Categories owned by other parts (`audit.*`, `schedule.*`,
 * `workflow.*`) pass through.
 *
 * @module
 */

/** Current schema version of each event type. */
export const EVENT_SCHEMA_VERSIONS: Readonly<Record<string, number>> = {
  "job.submitted": 1,
  "job.queued": 1,
  "job.dispatched": 1,
  "job.rejected": 1,
  "job.started": 1,
  "job.progressed": 1,
  "job.logged": 1,
  "job.cancel_requested": 1,
  "job.completed": 1,
  "job.failed": 1,
  "job.cancelled": 1,
  "job.timed_out": 1,
  "job.retry_scheduled": 1,
  "robot.registered": 1,
  "robot.connected": 1,
  "robot.disconnected": 1,
  "robot.paused": 1,
  "robot.resumed": 1,
  "robot.job_assigned": 1,
  "robot.job_released": 1,
};

/** Categories (the part before the first dot) whose every type must be known. */
const OWNED_CATEGORIES = new Set(["job", "robot"]);

/** An upcaster turns `data` of version n into version n + 1. */
export type Upcaster = (data: Record<string, unknown>) => Record<string, unknown>;

/** Upcasters by `${type}@${fromVersion}`. None yet: every type is at version 1. */
export const UPCASTERS: Readonly<Record<string, Upcaster>> = {};

/** Thrown when the log holds an event this version of the orchestrator cannot read. */
export class UnknownEventTypeError extends Error {
  override name = "UnknownEventTypeError";
  readonly type: string;
  readonly schemaVersion: number;
  readonly globalPosition: number;
  constructor(type: string, schemaVersion: number, globalPosition: number) {
    super(
      `Event ${globalPosition} has type ${type} version ${schemaVersion}, which this ` +
        `orchestrator does not know; upgrade it before it reads this log`,
    );
    this.type = type;
    this.schemaVersion = schemaVersion;
    this.globalPosition = globalPosition;
  }
}

/** Metadata every new event carries: the schema version of its type. */
export function schemaMetadata(type: string): { schema_version: number } {
  return { schema_version: EVENT_SCHEMA_VERSIONS[type] ?? 1 };
}

/**
 * Brings an event's data to the current schema version of its type.
 * @returns the data to fold, or null for a category this fold does not own.
 * @throws {UnknownEventTypeError} for an unknown type (or a newer version) of an owned
 *   category, or a missing upcaster.
 */
export function upcast(event: {
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  globalPosition: number;
}): Record<string, unknown> | null {
  const category = event.type.slice(0, event.type.indexOf("."));
  if (!OWNED_CATEGORIES.has(category)) return null;
  const current = EVENT_SCHEMA_VERSIONS[event.type];
  const raw = event.metadata?.schema_version;
  let version = typeof raw === "number" && Number.isInteger(raw) && raw >= 1 ? raw : 1;
  if (current === undefined || version > current) {
    throw new UnknownEventTypeError(event.type, version, event.globalPosition);
  }
  let data = event.data;
  while (version < current) {
    const up = UPCASTERS[`${event.type}@${version}`];
    if (!up) throw new UnknownEventTypeError(event.type, version, event.globalPosition);
    data = up(data);
    version++;
  }
  return data;
}
