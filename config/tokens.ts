/**
 * API and robot tokens: from the environment, else generated on first start and kept in
 * `DATA_DIR/tokens.json` with mode 0600. The tokens themselves are never logged.
 *
 * @module
 */

/** The two bearer tokens. */
export interface Tokens {
  apiToken: string;
  robotToken: string;
  /** Path of the tokens file when one was read or written, else null. */
  file: string | null;
}

function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Resolves the tokens: given values win; missing ones come from (or are added to)
 * `${dataDir}/tokens.json`, created with mode 0600.
 */
export async function resolveTokens(options: {
  dataDir: string;
  apiToken: string | null;
  robotToken: string | null;
}): Promise<Tokens> {
  if (options.apiToken && options.robotToken) {
    return { apiToken: options.apiToken, robotToken: options.robotToken, file: null };
  }
  const file = `${options.dataDir}/tokens.json`;
  let stored: { api_token?: string; robot_token?: string } = {};
  try {
    stored = JSON.parse(await Deno.readTextFile(file));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const tokens = {
    api_token: stored.api_token ?? newToken(),
    robot_token: stored.robot_token ?? newToken(),
  };
  if (tokens.api_token !== stored.api_token || tokens.robot_token !== stored.robot_token) {
    await Deno.mkdir(options.dataDir, { recursive: true });
    await Deno.writeTextFile(file, JSON.stringify(tokens, null, 2) + "\n", { mode: 0o600 });
    await Deno.chmod(file, 0o600);
  }
  return {
    apiToken: options.apiToken ?? tokens.api_token,
    robotToken: options.robotToken ?? tokens.robot_token,
    file,
  };
}

/** Compares two tokens in time independent of where they differ. */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
