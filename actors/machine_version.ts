/**
 * The version of a machine's behaviour, for snapshots: a snapshot folded by one version of
 * a machine is only valid for that version (design notes: "snapshots break when the
 * machine changes: store the machine's version beside them").
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { AnyStateMachine } from "xstate";

const versions = new WeakMap<AnyStateMachine, string>();

/**
 * A SHA-256 (hex, 16 characters) of everything that decides the machine's transitions:
 * its state and transition structure, the source text of its guards and actions, and its
 * initial context. Any edit of the machine's code gives a new version, so snapshots taken
 * with the old one are ignored (and replaced) instead of being trusted; an unchanged
 * machine keeps its version across restarts and processes.
 *
 * @param machine An XState v5 machine.
 * @returns 16 lower case hex digits.
 */
export function machineVersion(machine: AnyStateMachine): string {
  let version = versions.get(machine);
  if (version === undefined) {
    const source = JSON.stringify(
      {
        id: machine.id,
        config: machine.config,
        implementations: machine.implementations,
      },
      (_key, value) => typeof value === "function" ? `fn:${value.toString()}` : value,
    );
    version = createHash("sha256").update(source).digest("hex").slice(0, 16);
    versions.set(machine, version);
  }
  return version;
}
