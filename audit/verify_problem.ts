/**
 * A problem `verifyLog` finds in the log.
 *
 * @module
 */

/**
 * What was done to the log, as far as the check can tell:
 * - `altered`: an event's stored hash differs from the one recomputed from its content and
 *   its predecessor (its type, data, metadata, id, stream or version was changed, or its
 *   hash), or a seal disagrees with the stream's events below the seal's horizon;
 * - `removed`: versions are missing inside a stream (an event in the middle was deleted);
 * - `reordered`: the stream's version order is not the order its events were inserted in
 *   (global positions), e.g. two events' versions were swapped;
 * - `tail_removed`: the stream ends before the head that the latest seal (or the anchor
 *   given) recorded; its last events, or the whole stream, were deleted.
 */
export type ProblemKind = "altered" | "removed" | "reordered" | "tail_removed";

/** The first bad event of one stream. */
export interface VerifyProblem {
  /** The stream. */
  streamId: string;
  /** The first version found bad (for `removed` and `tail_removed`: the first missing). */
  version: number;
  /** What was done. */
  kind: ProblemKind;
  /** Sentence saying what was expected and what was found. */
  message: string;
}
