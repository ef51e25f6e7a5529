// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * A stored workflow that schedules run cannot be deleted, through the real HTTP server on
 * both stores: `DELETE /api/v1/workflows/:id` answers 409 `workflow_in_use` naming the
 * schedules (field `workflow_id`, `schedule_ids`) and the workflow stays; once they are
 * removed the delete answers 204. A workflow deleted anyway (recorded by a node that did not
 * know the schedule yet, or before deletes were refused; here appended to the log directly)
 * makes each tick record `schedule.skipped` with reason `workflow_not_found`, shown in the
 * schedule's history, with no job and no error report, on an injected clock.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/clock.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";

const WORKFLOW = {
  metadata: { name: "Deleted", version: "1.0.0" },
  nodes: { a: { node_id: "a", node_type: "LogNode", config: { message: "a" } } },
  connections: [],
};
const START = Date.parse("2026-06-01T12:00:00Z");
const CONFIG = { heartbeatInterval: 600, heartbeatTimeout: 3600, sealInterval: 0 };
const at = (seconds: number) => new Date(START + seconds * 1000).toISOString().replace(".000", "");

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] a workflow schedules use is not deleted; one deleted anyway makes ticks record schedule.skipped`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(START);
    const o = await startOrchestrator(store, CONFIG, clock);
    const reported: unknown[] = [];
    const consoleError = console.error;
    try {
      /** DELETE: status and JSON body (null for a 204). */
      const del = async (path: string) => {
        const res = await fetch(o.url + path, {
          method: "DELETE",
          headers: { authorization: `Bearer ${o.apiToken}` },
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : null };
      };
      const ok = async (method: string, path: string, body?: unknown) => {
        const res = await o.api(method, path, body);
        assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
        return res.body;
      };
      for (const id of ["wf-del", "wf-race"]) {
        await ok("POST", "/api/v1/workflows", {
          workflow_id: id,
          content: WORKFLOW,
          status: "published",
        });
      }
      for (
        const [id, workflow] of [["sdel", "wf-del"], ["sdel2", "wf-del"], ["srace", "wf-race"]]
      ) {
        await ok("POST", "/api/v1/schedules", {
          schedule_id: id,
          workflow_id: workflow,
          frequency: "cron",
          cron_expression: "0 0 1 1 *",
        });
      }

      // Refused while schedules use it, naming them; the workflow stays.
      const refused = await del("/api/v1/workflows/wf-del");
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, "workflow_in_use");
      assert.equal(refused.body.error.field, "workflow_id");
      assert.deepEqual(refused.body.error.schedule_ids, ["sdel", "sdel2"]);
      assert.match(refused.body.error.message, /sdel, sdel2/);
      assert.equal((await o.api("GET", "/api/v1/workflows/wf-del")).status, 200);
      // Still refused while one is left; deleted once none is.
      assert.equal((await del("/api/v1/schedules/sdel")).status, 204);
      const again = await del("/api/v1/workflows/wf-del");
      assert.equal(again.status, 409);
      assert.deepEqual(again.body.error.schedule_ids, ["sdel2"]);
      await ok("PATCH", "/api/v1/schedules/sdel2", { workflow: WORKFLOW });
      assert.equal((await del("/api/v1/workflows/wf-del")).status, 204);
      assert.equal((await o.api("GET", "/api/v1/workflows/wf-del")).status, 404);

      // Deleted anyway: each tick is recorded as skipped, no job, no error report.
      const { events } = await store.append([{
        streamId: "workflow-wf-race",
        expectedVersion: "any",
        events: [{ type: "workflow.deleted", data: { deleted_at: at(0) } }],
      }]);
      await o.orchestrator.settled(events[0].globalPosition);
      await ok("PATCH", "/api/v1/schedules/srace", { cron_expression: "* * * * * *" });
      console.error = (...args: unknown[]) => reported.push(args);
      for (let i = 0; i < 2; i++) {
        clock.advance(1000);
        await o.orchestrator.scheduler.idle();
      }
      const skipped = (await store.readStream("schedule-srace"))
        .filter((e) => e.type === "schedule.skipped")
        .map((e) => [e.data.scheduled_for, e.data.reason, e.data.workflow_id]);
      assert.deepEqual(skipped, [
        [at(1), "workflow_not_found", "wf-race"],
        [at(2), "workflow_not_found", "wf-race"],
      ]);
      assert.deepEqual(reported, []);
      const history = await ok("GET", "/api/v1/events?stream=schedule-srace");
      assert.equal(
        history.events.filter((e: any) => e.data.reason === "workflow_not_found").length,
        2,
      );
      assert.equal(o.orchestrator.jobs.list({ limit: 100 }).jobs.length, 0);
    } finally {
      console.error = consoleError;
      await o.stop({ keepStore: true });
      await store.close();
      await drop();
    }
  });
}
