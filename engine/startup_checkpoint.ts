/**
 * Start-up checkpoints: the whole state folded from the log (actors, projections, every
 * listener that folds the log) at a log position, stored beside the log so that a restart
 * folds only the events after it. A checkpoint is a cache, never a source of truth:
 *
 * - it is keyed by the code version ({@linkcode checkpointCodeVersion}: a SHA-256 of the
 *   source of every module that folds the log, of V8's version, which fixes the
 *   serialisation format, and of the configuration the fold depends on), and one of another
 *   version is ignored;
 * - it is used only when the log still holds its last event at its position with the same
 *   id, no stream was archived after it, and its bytes match their SHA-256
 *   (`SnapshotStore.loadCheckpoint`); anything else, or a state that does not deserialise
 *   into the expected parts, means a full replay;
 * - deleting every checkpoint (`delete from replay_checkpoints`) changes no result, only
 *   the time to start (tested: the state after checkpoint + tail equals a full replay).
 *
 * The state is serialised with V8's structured clone (`node:v8`), which keeps `Map`s,
 * `Set`s, `Date`s and shared references.
 *
 * A component that folds the log must put every field it folds into its
 * `checkpointState()` (and be listed in `Orchestrator.checkpointParts`): the code version
 * cannot tell a field that was left out. `tests/startup_checkpoint_test.ts` compares what
 * the read API serves (listings, `/metrics`) after a restore and after a full replay.
 *
 * @module
 */
import { promisify } from "node:util";
import { deserialize, serialize } from "node:v8";
import { gunzip, gzip } from "node:zlib";

/** A component whose folded state goes into a checkpoint. */
export interface CheckpointPart {
  /** Its state as live references; serialised at once by the caller. */
  checkpointState(): unknown;
  /** Replaces its state with a deserialised {@linkcode CheckpointPart.checkpointState}. */
  restoreState(state: unknown): void;
}

/** Bump when the layout of the parts changes without a change of the folding code. */
const CHECKPOINT_FORMAT = 1;

/** Directories (next to `engine/`) whose modules fold the log. */
const FOLDING_DIRS = ["actors", "alerts", "engine", "events", "projections", "schedules"];

let sourceHash: Promise<string | null> | null = null;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of the `.ts` files of {@linkcode FOLDING_DIRS}; null when they cannot be read. */
function foldingSourceHash(): Promise<string | null> {
  sourceHash ??= (async () => {
    try {
      const root = new URL("../", import.meta.url);
      if (root.protocol !== "file:") return null;
      const parts: string[] = [];
      for (const dir of FOLDING_DIRS) {
        const names: string[] = [];
        for await (const entry of Deno.readDir(new URL(`${dir}/`, root))) {
          if (entry.isFile && entry.name.endsWith(".ts")) names.push(entry.name);
        }
        for (const name of names.sort()) {
          parts.push(`${dir}/${name}`, await Deno.readTextFile(new URL(`${dir}/${name}`, root)));
        }
      }
      return await sha256Hex(parts.join("\0"));
    } catch {
      return null; // no read permission, or not run from source: no checkpoints
    }
  })();
  return sourceHash;
}

/**
 * The version a checkpoint is keyed by: the folding code's source, V8's version (the
 * serialisation format), {@linkcode CHECKPOINT_FORMAT} and `configuration` (what the fold
 * depends on, e.g. alert thresholds), hashed. Null when the source cannot be read (then no
 * checkpoint is written or used).
 */
export async function checkpointCodeVersion(configuration: unknown): Promise<string | null> {
  const source = await foldingSourceHash();
  if (source === null) return null;
  return await sha256Hex(
    JSON.stringify([CHECKPOINT_FORMAT, Deno.version.v8, source, configuration]),
  );
}

/** Actors in the compact form of {@linkcode encodeActors}. */
export interface EncodedActors {
  /** Key lists of the contexts, each once. */
  shapes: string[][];
  /** Per actor: id, state value, status, version, shape index, context values in shape order. */
  rows: [string, unknown, unknown, number, number, unknown[]][];
}

/**
 * Actor states (`{snapshot: {value, context, status}, version}` by id) in a compact form
 * for a checkpoint: each context's key list is written once per distinct list (a
 * serialiser writes every object's keys, and reads them back one string at a time), and
 * object values of a context that are equal as JSON (a job's workflow, retry policy,
 * empty lists…) are written once and shared on restore. Contexts are immutable (the
 * machines' `assign` copies them), so sharing equal values changes nothing.
 */
export function encodeActors(
  actors: ReadonlyMap<
    string,
    { snapshot: { value: unknown; context: unknown; status: unknown }; version: number }
  >,
): EncodedActors {
  const shapes: string[][] = [];
  const shapeIndex = new Map<string, number>();
  const shared = new Map<string, unknown>();
  const rows: EncodedActors["rows"] = [];
  for (const [id, state] of actors) {
    const context = state.snapshot.context as Record<string, unknown>;
    const keys = Object.keys(context);
    const shapeKey = keys.join("\0");
    let index = shapeIndex.get(shapeKey);
    if (index === undefined) {
      index = shapes.length;
      shapes.push(keys);
      shapeIndex.set(shapeKey, index);
    }
    const values = new Array<unknown>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const value = context[keys[i]];
      if (value !== null && typeof value === "object") {
        const json = JSON.stringify(value);
        const same = shared.get(json);
        if (same === undefined) shared.set(json, value);
        values[i] = same ?? value;
      } else {
        values[i] = value;
      }
    }
    rows.push([id, state.snapshot.value, state.snapshot.status, state.version, index, values]);
  }
  return { shapes, rows };
}

/**
 * The actor states of {@linkcode encodeActors}, into `into` (cleared first). Each context
 * is a copy of a template object of its shape with the values stored into existing keys:
 * an object built by adding forty keys one at a time falls into V8's slow dictionary mode
 * (5× slower to build here, and slower to read afterwards).
 */
export function decodeActors<S>(encoded: EncodedActors, into: Map<string, S>): void {
  into.clear();
  const { shapes, rows } = encoded;
  const templates = shapes.map((keys) =>
    JSON.parse(JSON.stringify(Object.fromEntries(keys.map((k) => [k, null])))) as Record<
      string,
      unknown
    >
  );
  for (let r = 0; r < rows.length; r++) {
    const [id, value, status, version, index, values] = rows[r];
    const keys = shapes[index];
    const context: Record<string, unknown> = { ...templates[index] };
    for (let i = 0; i < keys.length; i++) context[keys[i]] = values[i];
    into.set(id, { snapshot: { value, context, status }, version } as S);
  }
}

/** Serialises every part's state, synchronously (the state cannot change meanwhile). */
export function captureCheckpoint(parts: Record<string, CheckpointPart>): Uint8Array {
  const state: Record<string, unknown> = {};
  for (const [name, part] of Object.entries(parts)) state[name] = part.checkpointState();
  return serialize(state);
}

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Gzips a captured checkpoint for storage (level 1: fast; the serialised state compresses well). */
export async function compressCheckpoint(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await gzipAsync(data, { level: 1 }));
}

/** Gunzips a stored checkpoint; null when the bytes are not a whole gzip stream. */
export async function decompressCheckpoint(data: Uint8Array): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await gunzipAsync(data));
  } catch {
    return null;
  }
}

/**
 * Decodes a stored checkpoint (gzipped, see {@linkcode compressCheckpoint}) for `parts`:
 * the state of each part, or null when the bytes do not gunzip or deserialise or do not
 * name exactly these parts (nothing is restored then).
 */
export async function decodeCheckpoint(
  stored: Uint8Array,
  parts: Record<string, CheckpointPart>,
): Promise<Record<string, unknown> | null> {
  const data = await decompressCheckpoint(stored);
  if (data === null) return null;
  let state: unknown;
  try {
    state = deserialize(data);
  } catch {
    return null;
  }
  if (state === null || typeof state !== "object" || Array.isArray(state)) return null;
  const names = Object.keys(parts).sort();
  const have = Object.keys(state).sort();
  if (names.length !== have.length || names.some((n, i) => n !== have[i])) return null;
  return state as Record<string, unknown>;
}
