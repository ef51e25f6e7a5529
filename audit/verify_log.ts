/**
 * Checks every hash chain and the latest seal of the log.
 *
 * @module
 */

import {
  type ChainedEvent,
  eventHash,
  GENESIS_HASH,
  SEAL_STREAM,
  type StreamHead,
} from "../events/mod.ts";
import type { AuditSource } from "./audit_source.ts";
import type { ProblemKind, VerifyProblem } from "./verify_problem.ts";
import { foldSeals } from "./_fold_seals.ts";

/** Progress of a verification, reported after each page read. */
export interface VerifyProgress {
  /** Streams checked so far (including the one being read). */
  streams: number;
  /** Events checked so far. */
  events: number;
}

/** Options of {@linkcode verifyLog}. */
export interface VerifyLogOptions {
  /** Called after each page of events with the counts so far. */
  onProgress?: (progress: VerifyProgress) => void;
  /** Events read per query. @default 1000 */
  pageSize?: number;
  /**
   * A seal event you wrote down earlier (`version` in `audit-seals` and its chain `hash`,
   * as `seal()` or a previous verification returned them). The log must still hold it,
   * unchanged: this catches a rewrite of the seals themselves, which the database alone
   * cannot.
   * @default undefined (no anchor)
   */
  anchor?: { version: number; hash: string };
  /**
   * Heads the log must also reach, and who recorded them (for the archive: the heads of the
   * `audit.archived` events of the live log, see `verifyArchive`).
   * @default undefined (none)
   */
  expectHeads?: { heads: Iterable<StreamHead>; by: string };
  /** Stop collecting problems after this many (one per stream). @default 100 */
  maxProblems?: number;
  /** Rejects with the signal's reason when aborted between pages. */
  signal?: AbortSignal;
}

/** Result of {@linkcode verifyLog}. */
export interface VerifyLogResult {
  /** True when no problem was found. */
  ok: boolean;
  /** Streams read. */
  streams: number;
  /** Events read. */
  events: number;
  /** The latest seal, which the stream heads were checked against; absent if none. */
  seal?: { version: number; hash: string | null; horizon: string; streams: number };
  /**
   * Streams moved to an archive (`audit.archived` events) and the tables they went to;
   * absent when none were (check them with `verifyArchive`).
   */
  archived?: { streams: number; tables: string[] };
  /** The first problem found (streams in `stream_id` order; sealed streams gone last). */
  firstProblem?: VerifyProblem;
  /** The first problem of each bad stream, in the same order, at most `maxProblems`. */
  problems: VerifyProblem[];
}

/** A head the stream must still have. */
interface ExpectedHead {
  version: number;
  hash: string;
  by: string;
}

/** A candidate problem of the stream being read. */
type Candidate = Omit<VerifyProblem, "streamId">;

/** Which kind wins when two candidates name the same version. */
const PRECEDENCE: Record<ProblemKind, number> = {
  reordered: 0,
  removed: 1,
  tail_removed: 2,
  altered: 3,
};

/**
 * Verifies the log: recomputes every stream's hash chain in version order, checks that
 * versions have no holes and follow insert order, and checks every stream against the
 * latest seal (heads recorded, heads hash and counts). Reads only; safe on a live log
 * (events appended meanwhile are checked or not, never misreported).
 *
 * The checks, stream by stream (`stream_id` order):
 * 1. versions run 1, 2, 3… — a hole is `removed`;
 * 2. each stored hash equals `SHA-256(previous stored hash, canonical content)` — else
 *    `altered` (the chain then continues from the stored hash, so one edit is reported
 *    once);
 * 3. global positions increase with versions — else `reordered`;
 * 4. the stream still reaches the head the latest seal recorded for it, with the same
 *    hash — else `tail_removed` (or `altered`); events below the seal's horizon that no
 *    seal records are `altered` (inserted after the seal).
 *
 * @example
 * ```ts
 * import { openEventStore } from "../events/mod.ts";
 * import { verifyLog } from "./verify_log.ts";
 * const store = await openEventStore({ dataDir: "memory://" });
 * const result = await verifyLog(store);
 * console.log(result.ok, result.firstProblem);
 * await store.close();
 * ```
 *
 * @param source The store (anything with `readChain`).
 * @param options Progress callback, page size, anchor, signal.
 * @returns Counts and the problems found; `ok` is false when there is any.
 * @throws {RangeError} When `pageSize` or `maxProblems` is not an integer >= 1.
 * @throws {Error} The store's error when the log cannot be read, or the signal's reason.
 */
export async function verifyLog(
  source: AuditSource,
  options: VerifyLogOptions = {},
): Promise<VerifyLogResult> {
  const { onProgress, pageSize = 1000, anchor, expectHeads, maxProblems = 100, signal } = options;
  for (const [name, value] of [["pageSize", pageSize], ["maxProblems", maxProblems]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
    }
  }
  const problems: VerifyProblem[] = [];
  const report = (problem: VerifyProblem) => {
    if (problems.length < maxProblems) problems.push(problem);
  };

  const folded = await foldSeals(source, { pageSize, signal });
  const { seal } = folded;
  const expected = new Map<string, ExpectedHead[]>();
  const expect = (streamId: string, head: ExpectedHead) =>
    expected.set(streamId, [...(expected.get(streamId) ?? []), head]);
  if (seal) {
    const by = `the latest seal (${SEAL_STREAM} version ${seal.version})`;
    for (const head of seal.heads.values()) expect(head.streamId, { ...head, by });
  }
  if (anchor) expect(SEAL_STREAM, { ...anchor, by: "the anchor given" });
  for (const head of expectHeads?.heads ?? []) {
    expect(head.streamId, { ...head, by: expectHeads!.by });
  }
  const horizon = seal?.horizon ?? 0n;

  let streams = 0;
  let events = 0;
  let stream: StreamCheck | undefined;
  const finish = (check: StreamCheck) => {
    expected.delete(check.streamId);
    const problem = check.finish();
    if (problem) report(problem);
  };
  let after: ChainedEvent | undefined;
  for (;;) {
    const page = await source.readChain({ after, limit: pageSize, signal });
    if (page.length === 0) break;
    after = page.at(-1);
    for (const event of page) {
      if (stream?.streamId !== event.streamId) {
        if (stream) finish(stream);
        stream = new StreamCheck(event.streamId, expected.get(event.streamId) ?? [], horizon);
        streams++;
      }
      stream.add(event);
      events++;
    }
    onProgress?.({ streams, events });
  }
  if (stream) finish(stream);
  for (const [streamId, heads] of expected) {
    const head = heads.reduce((a, b) => (b.version > a.version ? b : a));
    report({
      streamId,
      version: 1,
      kind: "tail_removed",
      message: `Stream ${streamId} has no events, but ${head.by} recorded its head at ` +
        `version ${head.version} (hash ${head.hash}): the whole stream was deleted`,
    });
  }
  problems.unshift(...folded.problems.slice(0, Math.max(0, maxProblems - problems.length)));
  const latest = seal && {
    version: seal.version,
    hash: seal.hash,
    horizon: String(seal.horizon),
    streams: seal.streams,
  };
  return {
    ok: problems.length === 0,
    streams,
    events,
    ...(folded.archived.heads.size > 0
      ? {
        archived: { streams: folded.archived.heads.size, tables: [...folded.archived.tables] },
      }
      : {}),
    ...(latest ? { seal: latest } : {}),
    ...(problems.length > 0 ? { firstProblem: problems[0] } : {}),
    problems,
  };
}

/** The checks of one stream, fed its events in version order. */
class StreamCheck {
  readonly streamId: string;
  #expected: ExpectedHead[];
  #horizon: bigint;
  #next = 1;
  #previous = GENESIS_HASH;
  #positions: number[] = [];
  #versions: number[] = [];
  #removed?: Candidate;
  #altered?: Candidate;
  #storedAt = new Map<number, string | null>();
  /** Last version whose transaction is below the seal's horizon (0: none). */
  #sealedPart = 0;
  /** First version below the horizon. */
  #firstSealed = 0;

  constructor(streamId: string, expected: ExpectedHead[], horizon: bigint) {
    this.streamId = streamId;
    this.#expected = expected;
    this.#horizon = horizon;
  }

  add(event: ChainedEvent): void {
    const version = event.streamVersion;
    this.#positions.push(event.globalPosition);
    this.#versions.push(version);
    if (this.#expected.some((head) => head.version === version)) {
      this.#storedAt.set(version, event.hash);
    }
    if (BigInt(event.transactionId) < this.#horizon) {
      this.#sealedPart = version;
      this.#firstSealed ||= version;
    }
    if (version !== this.#next) {
      this.#removed ??= {
        version: this.#next,
        kind: "removed",
        message: `Stream ${this.streamId} jumps from version ${this.#next - 1} to ${version}: ` +
          (version - this.#next === 1
            ? `version ${this.#next} was deleted`
            : `versions ${this.#next}–${version - 1} were deleted`),
      };
    } else {
      let computed: string | undefined;
      let why = "";
      try {
        computed = eventHash(this.#previous, event);
      } catch (error) {
        why = `its content cannot be canonicalised (${(error as Error).message})`;
      }
      if (computed === undefined || computed !== event.hash) {
        this.#altered ??= {
          version,
          kind: "altered",
          message: `Stream ${this.streamId} version ${version} (${event.type}, event ` +
            `${event.eventId}) was altered: ` +
            (why ||
              (event.hash === null
                ? "it has no hash"
                : `its stored hash ${event.hash} differs from ${computed}, recomputed from ` +
                  `its content and the previous event's hash`)),
        };
      }
    }
    // Continue from the stored hash: an edited event is reported once, not its successors.
    this.#previous = event.hash ?? GENESIS_HASH;
    this.#next = version + 1;
  }

  /** The stream's first problem, if any: the lowest version, ties by kind. */
  finish(): VerifyProblem | undefined {
    const candidates = [this.#removed, this.#altered, this.#reordered(), this.#sealed()]
      .filter((c): c is Candidate => c !== undefined)
      .sort((a, b) => a.version - b.version || PRECEDENCE[a.kind] - PRECEDENCE[b.kind]);
    return candidates[0] && { streamId: this.streamId, ...candidates[0] };
  }

  /** The first version not in insert order, if any. */
  #reordered(): Candidate | undefined {
    const sorted = [...this.#positions].sort((a, b) => a - b);
    const i = this.#positions.findIndex((position, i) => position !== sorted[i]);
    if (i < 0) return undefined;
    return {
      version: this.#versions[i],
      kind: "reordered",
      message: `Stream ${this.streamId} is out of insert order at version ` +
        `${this.#versions[i]}: it holds the event at global position ${this.#positions[i]}, ` +
        `but the stream's events in position order put ${sorted[i]} there`,
    };
  }

  /** Disagreements with the seal (and anchor) heads. */
  #sealed(): Candidate | undefined {
    const last = this.#versions.at(-1) ?? 0;
    const found: Candidate[] = [];
    for (const head of this.#expected) {
      const stored = this.#storedAt.get(head.version);
      if (last < head.version) {
        found.push({
          version: last + 1,
          kind: "tail_removed",
          message: `Stream ${this.streamId} ends at version ${last}, but ${head.by} recorded ` +
            `its head at version ${head.version} (hash ${head.hash}): its last ` +
            `${head.version - last} event(s) were deleted`,
        });
      } else if (stored !== undefined && stored !== head.hash) {
        found.push({
          version: head.version,
          kind: "altered",
          message: `Stream ${this.streamId} version ${head.version} has hash ${stored}, but ` +
            `${head.by} recorded ${head.hash}: the stream was rewritten up to there`,
        });
      }
    }
    const sealHead = this.#expected.find((head) => head.by !== "the anchor given");
    if (this.#horizon > 0n) {
      if (!sealHead && this.#sealedPart > 0) {
        found.push({
          version: this.#firstSealed,
          kind: "altered",
          message: `Stream ${this.streamId} has events up to version ${this.#sealedPart} ` +
            `below the latest seal's horizon that no seal recorded: added after sealing`,
        });
      } else if (sealHead && this.#sealedPart > sealHead.version) {
        found.push({
          version: sealHead.version + 1,
          kind: "altered",
          message: `Stream ${this.streamId} has events up to version ${this.#sealedPart} ` +
            `below the latest seal's horizon, but ${sealHead.by} recorded its head at ` +
            `version ${sealHead.version}: added after sealing`,
        });
      }
    }
    return found.sort((a, b) => a.version - b.version)[0];
  }
}
