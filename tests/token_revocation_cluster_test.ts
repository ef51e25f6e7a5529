/**
 * Revoking a robot's credential on one node of a cluster closes the robot's WebSocket on the
 * node that holds it: two orchestrators in cluster mode on one PostgreSQL schema, robots
 * connected (real WebSockets) to node B, the tokens revoked through node A's API. Node B
 * closes the connections (4001) when it applies `api_token.revoked` / `robot_token.revoked`
 * from the log, and refuses the tokens from then on.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPostgresClient, openEventStore, type SqlClient } from "../events/mod.ts";
import { startOrchestrator, TEST_DATABASE_URL, type TestOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

Deno.test("cluster: revoking a robot token through node A closes the robot connected to node B (4001)", async () => {
  const schema = `c_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const clients: SqlClient[] = [];
  const nodes: TestOrchestrator[] = [];
  const robots: RawRobot[] = [];
  const node = async (name: string) => {
    const store = await openEventStore({
      databaseUrl: TEST_DATABASE_URL,
      dataDir: "unused",
      schema,
      maxConnections: 4,
    });
    const client = await createPostgresClient({ url: TEST_DATABASE_URL, schema, max: 2 });
    clients.push(client);
    const n = await startOrchestrator(store, { heartbeatInterval: 1 }, undefined, {
      cluster: { client, nodeId: name, leaseMs: 1500, renewMs: 300, nodeIntervalMs: 300 },
    });
    nodes.push(n);
    return n;
  };
  const del = async (n: TestOrchestrator, path: string) => {
    const res = await fetch(n.url + path, {
      method: "DELETE",
      headers: { authorization: `Bearer ${n.apiToken}` },
    });
    assert.equal(res.status, 204, path);
    await res.body?.cancel();
  };
  try {
    const a = await node("node-a");
    const b = await node("node-b");
    const issued = await a.api("POST", "/api/v1/tokens", { org_id: "acme", role: "robot" });
    assert.equal(issued.status, 201);
    const provisioned = await a.api("POST", "/api/v1/robots", { robot_id: "own-1" });
    assert.equal(provisioned.status, 201);
    // Node B knows both tokens once it has applied their events from the log.
    await b.waitUntil(() =>
      b.orchestrator.apiTokens.get(issued.body.token_id) !== undefined &&
      b.orchestrator.robotTokens.get("own-1") !== undefined
    );
    const connect = async (token: string, id: string) => {
      const robot = new RawRobot(b.wsUrl, token, id);
      robots.push(robot);
      assert.equal((await robot.register()).payload.success, true, id);
      return robot;
    };
    const viaApiToken = await connect(issued.body.token, "api-1");
    const viaOwnToken = await connect(provisioned.body.token, "own-1");
    const viaShared = await connect(b.robotToken, "shared-1");

    await del(a, `/api/v1/tokens/${issued.body.token_id}`);
    assert.deepEqual(await viaApiToken.closed, { code: 4001, reason: "robot token revoked" });
    await del(a, "/api/v1/robots/own-1/token");
    assert.deepEqual(await viaOwnToken.closed, { code: 4001, reason: "robot token revoked" });

    // Refused from then on, on either node; the shared token's robot is untouched.
    for (const n of [a, b]) {
      for (const [token, id] of [[issued.body.token, "api-1"], [provisioned.body.token, "own-1"]]) {
        const again = new RawRobot(n.wsUrl, token, id);
        robots.push(again);
        assert.equal((await again.register()).payload.success, false, `${id} on ${n.url}`);
        assert.equal((await again.closed).code, 4001);
      }
    }
    assert.ok([...b.orchestrator.sessions.connectedRobotIds()].includes("shared-1"));
    viaShared.kill();
  } finally {
    for (const robot of robots) robot.kill();
    for (const n of nodes) await n.stop().catch(() => {});
    for (const client of clients) await client.close();
    const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`drop schema if exists ${schema} cascade`);
    } finally {
      await sql.end();
    }
  }
});
