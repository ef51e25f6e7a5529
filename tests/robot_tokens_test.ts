/**
 * Per-robot provisioning tokens through the real server and real WebSockets, on both stores:
 * shown once, kept only as a SHA-256 in the log, good for their own robot only, revocable
 * and rotatable, and still valid after a restart.
 */
import assert from "node:assert/strict";
import { tokenSha256 } from "../engine/mod.ts";
import { BACKENDS, startOrchestrator, type TestOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

async function registers(o: TestOrchestrator, token: string, robotId: string): Promise<boolean> {
  const robot = new RawRobot(o.wsUrl, token, robotId);
  const answer = await robot.register();
  if (!answer.payload.success) {
    assert.equal((await robot.closed).code, 4001);
    return false;
  }
  robot.kill();
  await robot.closed;
  return true;
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] a provisioned robot registers with its own token until it is revoked`, async () => {
    const { store, reopen, drop } = await backend.open();
    let o = await startOrchestrator(store);
    try {
      const created = await o.api("POST", "/api/v1/robots", { robot_id: "r1", name: "Robot one" });
      assert.equal(created.status, 201);
      const token: string = created.body.token;
      assert.match(token, /^rbt_[0-9a-f]{64}$/);
      assert.equal(created.body.active, true);
      assert.equal(created.body.name, "Robot one");
      const again = await o.api("POST", "/api/v1/robots", { robot_id: "r1" });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.field, "robot_id");
      const bad = await o.api("POST", "/api/v1/robots", { robot_id: "no spaces" });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.field, "robot_id");
      const unauthenticated = await fetch(`${o.url}/api/v1/robots`, { method: "POST" });
      assert.equal(unauthenticated.status, 401);
      await unauthenticated.body?.cancel();

      const events = await o.store.readStream("robot_token-r1");
      assert.deepEqual(events.map((e) => e.type), ["robot_token.issued"]);
      assert.equal(events[0].data.token_sha256, await tokenSha256(token));
      assert.ok(!JSON.stringify(await o.store.readAll({})).includes(token), "never at rest");
      const shown = await o.api("GET", "/api/v1/robots/r1/token");
      assert.equal(shown.body.token, undefined);
      assert.equal(shown.body.active, true);

      assert.equal(await registers(o, token, "r1"), true);
      assert.equal(await registers(o, token, "r2"), false, "only for its own robot id");
      assert.equal(await registers(o, "rbt_guess", "r1"), false);
      assert.equal(await registers(o, o.robotToken, "r3"), true, "the shared token still works");

      // Revoking closes the connection that registered with the token.
      const live = new RawRobot(o.wsUrl, token, "r1");
      assert.equal((await live.register()).payload.success, true);
      const revoke = await fetch(`${o.url}/api/v1/robots/r1/token`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${o.apiToken}` },
      });
      assert.equal(revoke.status, 204);
      await revoke.body?.cancel();
      assert.equal((await live.closed).code, 4001);
      assert.equal(await registers(o, token, "r1"), false, "revoked");
      assert.equal((await o.api("GET", "/api/v1/robots/r1/token")).body.active, false);
      assert.equal(
        (await o.api("POST", "/api/v1/robots/r1/token")).status,
        404,
        "nothing to rotate",
      );

      const reissued = await o.api("POST", "/api/v1/robots", { robot_id: "r1" });
      assert.equal(reissued.status, 201);
      const rotated = await o.api("POST", "/api/v1/robots/r1/token");
      assert.equal(rotated.status, 201);
      assert.notEqual(rotated.body.token, reissued.body.token);
      assert.equal(await registers(o, reissued.body.token, "r1"), false, "replaced by rotation");
      assert.equal(await registers(o, rotated.body.token, "r1"), true);

      await o.stop({ keepStore: true });
      await store.close();
      o = await startOrchestrator(await reopen());
      assert.equal(await registers(o, rotated.body.token, "r1"), true, "rebuilt from the log");
      assert.equal(await registers(o, token, "r1"), false);
    } finally {
      await o.stop();
      await drop();
    }
  });
}
