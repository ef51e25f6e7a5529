/**
 * Organisations: which org each entity of the log belongs to.
 *
 * Rule: **a stream belongs to the `org_id` in the data of its first event** (version 1:
 * `job.submitted`, `robot.registered`, `schedule.added`, `workflow.created`,
 * `robot_token.issued`, `api_token.issued`, `alert.raised`); a first event without `org_id`
 * (every event written before organisations existed, and the system streams such as
 * `audit-seals`) belongs to {@linkcode DEFAULT_ORG}. An entity never changes org.
 *
 * Only streams of other orgs than the default one are kept in memory, so a deployment with
 * one org pays nothing; {@linkcode OrgIndex.orgOf} answers `default` for any other stream,
 * known or not (a caller of another org gets the same 404 for both).
 *
 * @module
 */

/** The org of everything written without one, and of the configured `ORCHESTRATOR_API_TOKEN`. */
export const DEFAULT_ORG = "default";

/** Rule for org ids: 1-64 letters, digits, `_`, `.` or `-`, starting with a letter or digit. */
export const ORG_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Rule for the ids a client may choose for its entities (`workflow_id`, `schedule_id`):
 * 1-128 letters, digits, `_`, `.` or `-`, starting with a letter or digit. They name streams
 * (`workflow-<id>`, `schedule-<id>`) and appear unescaped in paths.
 */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** {@linkcode CLIENT_ID_PATTERN} in words, for error messages ("workflow_id must be …"). */
export const CLIENT_ID_RULE = "1-128 letters, digits, _ . or - (starting with a letter or digit)";

/** Throws a `TypeError` naming `org_id` unless `value` is a valid org id. */
export function checkOrgId(value: unknown): string {
  if (typeof value !== "string" || !ORG_ID_PATTERN.test(value)) {
    throw new TypeError(
      `org_id must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit), got ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}

/** The org of each stream, folded from the log (see the module doc). */
export class OrgIndex {
  #orgs = new Map<string, string>();

  /** Applies one event read from the log (only version 1 events matter). */
  apply(event: { streamId: string; streamVersion: number; data: unknown }): void {
    if (event.streamVersion !== 1) return;
    const org = (event.data as { org_id?: unknown } | null)?.org_id;
    if (typeof org === "string" && org !== DEFAULT_ORG) this.#orgs.set(event.streamId, org);
  }

  /** The org of a stream: the one its first event named, else `default`. */
  orgOf(streamId: string): string {
    return this.#orgs.get(streamId) ?? DEFAULT_ORG;
  }

  /**
   * The org of a robot: that of its `robot-<id>` stream, else of its provisioning token's
   * `robot_token-<id>` stream (a provisioned robot that never connected).
   */
  robotOrg(robotId: string): string {
    return this.#orgs.get(`robot-${robotId}`) ?? this.orgOf(`robot_token-${robotId}`);
  }

  /** Every org other than `default` that owns a stream. */
  orgs(): Set<string> {
    return new Set(this.#orgs.values());
  }

  /** The index for a start-up checkpoint (`engine/startup_checkpoint.ts`): a live reference. */
  checkpointState(): unknown {
    return this.#orgs;
  }

  /** Replaces the index with one from {@linkcode OrgIndex.checkpointState}. */
  restoreState(state: unknown): void {
    this.#orgs = state as Map<string, string>;
  }
}
