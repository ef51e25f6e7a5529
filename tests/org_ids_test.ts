/**
 * Ids are global across organisations (streams are named by them), so an id another org took
 * cannot be used; the answer must not tell that org's entity apart from an id the caller's
 * own org reserved. Through the real HTTP server and real robot WebSockets, on both stores:
 * creating a workflow or schedule with another org's id answers exactly (byte for byte, the id
 * aside) what creating one with an id of the caller's own deleted one answers; provisioning
 * another org's robot id answers what provisioning one's own provisioned robot answers; and
 * registering another org's robot id answers as a wrong token does.
 */
import assert from "node:assert/strict";
import { BACKENDS, call, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = {
  metadata: { name: "Ids", version: "1.0.0" },
  nodes: { a: { node_id: "a", node_type: "LogNode", config: { message: "a" } } },
  connections: [],
};

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] an id taken by another org answers as an id of one's own org that is reserved`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    const robots: RawRobot[] = [];
    try {
      const tokens: Record<string, Record<string, string>> = { acme: {}, globex: {} };
      for (const org of ["acme", "globex"]) {
        for (const role of ["admin", "robot"]) {
          const res = await call(t, t.apiToken, "POST", "/api/v1/tokens", { org_id: org, role });
          assert.equal(res.status, 201, res.text);
          tokens[org][role] = JSON.parse(res.text).token;
        }
      }
      const acme = tokens.acme.admin;
      const globex = tokens.globex.admin;
      const ok = async (token: string, method: string, path: string, body?: unknown) => {
        const res = await call(t, token, method, path, body);
        assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
      };
      const workflow = (id: string) => ({ workflow_id: id, content: WORKFLOW });
      const schedule = (id: string) => ({
        schedule_id: id,
        workflow: WORKFLOW,
        frequency: "cron",
        cron_expression: "0 3 * * *",
      });
      // acme: a live workflow, schedule and robot; globex: a deleted workflow and schedule.
      await ok(acme, "POST", "/api/v1/workflows", workflow("wf-acme"));
      await ok(acme, "POST", "/api/v1/schedules", schedule("sc-acme"));
      await ok(acme, "POST", "/api/v1/robots", { robot_id: "rb-acme" });
      await ok(globex, "POST", "/api/v1/workflows", workflow("wf-gone"));
      await ok(globex, "DELETE", "/api/v1/workflows/wf-gone");
      await ok(globex, "POST", "/api/v1/schedules", schedule("sc-gone"));
      await ok(globex, "DELETE", "/api/v1/schedules/sc-gone");
      await ok(globex, "POST", "/api/v1/robots", { robot_id: "rb-globex" });
      // globex cannot see acme's entities...
      for (const path of ["workflows/wf-acme", "schedules/sc-acme", "robots/rb-acme"]) {
        assert.equal((await call(t, globex, "GET", `/api/v1/${path}`)).status, 404, path);
      }
      // ...nor its own deleted ones, whose ids stay taken.
      for (const path of ["workflows/wf-gone", "schedules/sc-gone"]) {
        assert.equal((await call(t, globex, "GET", `/api/v1/${path}`)).status, 404, path);
      }

      const same = async (
        what: string,
        path: string,
        foreign: [string, unknown],
        reserved: [string, unknown],
      ) => {
        const a = await call(t, globex, "POST", path, foreign[1]);
        const b = await call(t, globex, "POST", path, reserved[1]);
        assert.equal(a.status, 409, `${what}: ${a.text}`);
        assert.equal(b.status, 409, `${what}: ${b.text}`);
        assert.equal(
          a.text.replaceAll(foreign[0], "?"),
          b.text.replaceAll(reserved[0], "?"),
          `${what}: another org's id answers as one's own reserved id`,
        );
        assert.doesNotMatch(a.text.replaceAll(foreign[0], "?"), /acme/);
        return JSON.parse(a.text);
      };
      const wf = await same(
        "workflow",
        "/api/v1/workflows",
        ["wf-acme", workflow("wf-acme")],
        ["wf-gone", workflow("wf-gone")],
      );
      assert.equal(wf.error.field, "workflow_id");
      const sc = await same(
        "schedule",
        "/api/v1/schedules",
        ["sc-acme", schedule("sc-acme")],
        ["sc-gone", schedule("sc-gone")],
      );
      assert.equal(sc.error.field, "schedule_id");
      const rb = await same(
        "robot",
        "/api/v1/robots",
        ["rb-acme", { robot_id: "rb-acme" }],
        ["rb-globex", { robot_id: "rb-globex" }],
      );
      assert.equal(rb.error.field, "robot_id");

      // Registering acme's robot id with globex's robot token: refused as a wrong token is.
      const register = async (token: string, id: string) => {
        const robot = new RawRobot(t.wsUrl, token, id);
        robots.push(robot);
        const answer = await robot.register();
        return { payload: answer.payload, closed: await robot.closed };
      };
      const foreign = await register(tokens.globex.robot, "rb-acme");
      const wrong = await register("oat_" + "0".repeat(64), "rb-nobody");
      assert.deepEqual(
        { ...foreign.payload, robot_id: "?" },
        { ...wrong.payload, robot_id: "?" },
      );
      assert.equal(foreign.payload.success, false);
      assert.deepEqual(foreign.closed, wrong.closed);
      assert.equal(foreign.closed.code, 4001);
    } finally {
      for (const robot of robots) robot.kill();
      await t.stop();
      await drop();
    }
  });
}
