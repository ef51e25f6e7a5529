/**
 * `deno task start` on a port another process holds: a real `main.ts` process, on its own
 * PGlite folder, exits 1 with one clear line on stderr, no stack trace.
 */
import assert from "node:assert/strict";

Deno.test("main.ts on a port already in use exits 1 with one line naming the port", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "orch-port-" });
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = held.addr.port;
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname],
      env: {
        ORCHESTRATOR_HOST: "127.0.0.1",
        ORCHESTRATOR_PORT: String(port),
        DATA_DIR: dataDir,
        // The embedded store in dataDir, whatever the environment of the tests says.
        DATABASE_URL: "",
        ORCHESTRATOR_CLUSTER: "off",
        ORCHESTRATOR_API_TOKEN: "port-token",
        ORCHESTRATOR_ROBOT_TOKEN: "port-robot",
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 1, `stdout: ${out}\nstderr: ${err}`);
    assert.equal(
      err,
      `orchestrator: port ${port} is already in use (set ORCHESTRATOR_PORT to another port)\n`,
    );
    assert.doesNotMatch(out, /listening on|ready|\bat /, "it never served");
  } finally {
    held.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
