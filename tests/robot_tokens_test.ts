/**
 * Per-robot provisioning tokens through the real server and real WebSockets, on both stores:
 * shown once, kept only as a SHA-256 in the log, good for their own robot only, revocable
 * and rotatable, and still valid after a restart. Revoking an API token of role `robot`
 * closes the robots registered with it.
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

  Deno.test(`[${backend.name}] revoking an API token of role robot closes the robots registered with it (4001); they cannot register with it again`, async () => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store);
    const robots: RawRobot[] = [];
    try {
      const issue = async () => {
        const res = await o.api("POST", "/api/v1/tokens", { org_id: "acme", role: "robot" });
        assert.equal(res.status, 201);
        return res.body as { token: string; token_id: string };
      };
      const [revoked, kept] = [await issue(), await issue()];
      const connect = async (token: string, id: string) => {
        const robot = new RawRobot(o.wsUrl, token, id);
        robots.push(robot);
        assert.equal((await robot.register()).payload.success, true, id);
        return robot;
      };
      const x1 = await connect(revoked.token, "x1");
      const x2 = await connect(revoked.token, "x2");
      await connect(kept.token, "y1");
      await connect(o.robotToken, "z1");
      const own = await o.api("POST", "/api/v1/robots", { robot_id: "p1" });
      await connect(own.body.token, "p1");

      const res = await fetch(`${o.url}/api/v1/tokens/${revoked.token_id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${o.apiToken}` },
      });
      assert.equal(res.status, 204);
      await res.body?.cancel();
      assert.deepEqual(await x1.closed, { code: 4001, reason: "robot token revoked" });
      assert.deepEqual(await x2.closed, { code: 4001, reason: "robot token revoked" });
      await o.waitUntil(() =>
        ["x1", "x2"].every((id) => o.orchestrator.robot(id)?.status === "offline")
      );
      assert.deepEqual(
        [...o.orchestrator.sessions.connectedRobotIds()].sort(),
        ["p1", "y1", "z1"],
        "the other robot token, the shared token and a robot's own token are untouched",
      );
      assert.equal(await registers(o, revoked.token, "x1"), false, "refused from then on");
      assert.equal(await registers(o, revoked.token, "x3"), false);
      assert.equal(await registers(o, kept.token, "y2"), true);
    } finally {
      for (const robot of robots) robot.kill();
      await o.stop();
      await drop();
    }
  });
}
