/**
 * One orchestrator per data folder: embedded PGlite has no locking of its own, and two
 * processes on one folder would each number events from the same position and lose
 * acknowledged writes. An exclusive advisory lock on `DATA_DIR/orchestrator.lock`
 * (held until the process exits) refuses the second one.
 *
 * @module
 */

/** Thrown when another process holds the data folder. */
export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
  readonly dataDir: string;
  constructor(dataDir: string, holder: string) {
    super(`DATA_DIR ${dataDir} is in use by another orchestrator (${holder}); stop it first`);
    this.dataDir = dataDir;
  }
}

/**
 * Takes the data folder's lock, waiting at most `waitMs` (default 500 ms).
 * @returns the lock file; the lock lasts until it is closed or the process ends.
 * @throws {DataDirInUseError} when another process holds it.
 */
export async function lockDataDir(dataDir: string, waitMs = 500): Promise<Deno.FsFile> {
  await Deno.mkdir(dataDir, { recursive: true });
  const path = `${dataDir}/orchestrator.lock`;
  const file = await Deno.open(path, { create: true, read: true, write: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const locked = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs))),
  ]);
  clearTimeout(timer);
  if (!locked) {
    const holder = (await Deno.readTextFile(path).catch(() => "")).trim() || "unknown process";
    throw new DataDirInUseError(dataDir, holder);
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`pid ${Deno.pid}\n`));
  return file;
}
