/**
 * Issue 5, item 7: PostgreSQL goes away under load and comes back. The orchestrator
 * process connects as its own role; the outage refuses that role's logins (`nologin`) and
 * terminates its connections (`pg_terminate_backend`, what a server restart does to
 * them), so the rest of the shared server — other engineers' tests — is not disturbed.
 *
 * While the database is unreachable `/healthz` answers 503 `degraded`, reads are served
 * from memory, robots keep running and reporting; afterwards it answers `ok`, every
 * accepted job ends exactly once and no event is lost (the invariants of
 * `audit/job_invariants.ts` over the whole log).
 */
import assert from "node:assert/strict";
import { checkJobInvariants } from "../../audit/mod.ts";
import {
  admin,
  api,
  API_TOKEN,
  type Child,
  openFaultSite,
  startOrchestratorProcess,
  startRobotFleet,
} from "./_processes.ts";
import { watchLog } from "./_log_watch.ts";

const WORKFLOW = { metadata: { name: "outage-noop" }, nodes: {}, connections: [] };

Deno.test("PostgreSQL unreachable under load: /healthz degraded, reads served, nothing lost, every job ends once", async () => {
  const site = await openFaultSite({
    ownRole: true,
    config: { HEARTBEAT_INTERVAL: "2", HEARTBEAT_TIMEOUT: "60", RECONNECT_GRACE: "30" },
  });
  const role = `${site.schema}_role`;
  let orchestrator: Child | null = null;
  let fleet: Child | null = null;
  const watch = watchLog(site.store);
  try {
    orchestrator = await startOrchestratorProcess(site);
    fleet = await startRobotFleet(site, { count: 3, maxJobs: 4, prefix: "outage-robot" });
    /** Resolves once the database is back; submissions that failed wait for it. */
    let back: Promise<void> = Promise.resolve();
    const submit = async (key: string): Promise<string> => {
      const seen: string[] = [];
      for (let tries = 0; tries < 20; tries++) {
        const res = await fetch(`${site.url}/api/v1/jobs`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${API_TOKEN}`,
            "content-type": "application/json",
            "idempotency-key": key,
          },
          body: JSON.stringify({ workflow: WORKFLOW }),
        });
        const body = await res.json();
        if ((res.status === 201 || res.status === 200) && typeof body.job_id === "string") {
          return body.job_id;
        }
        // The only refusal allowed meanwhile: 503 store_unavailable, to be sent again.
        assert.equal(res.status, 503, JSON.stringify(body));
        assert.equal(body.error.code, "store_unavailable");
        seen.push(body.error.code);
        await back;
      }
      throw new Error(`submission ${key} kept failing: ${seen.join(", ")}`);
    };
    const submitMany = (prefix: string, n: number) =>
      Promise.all(Array.from({ length: n }, (_, i) => submit(`${prefix}-${i}`)));

    const before = await submitMany("before", 150);
    assert.equal((await api(site, "GET", "/healthz")).status, 200);

    // The outage: no new login for the orchestrator's role, and its connections cut.
    let endOutage!: () => void;
    back = new Promise((resolve) => (endOutage = resolve));
    await admin(async (sql) => {
      await sql.unsafe(`alter role ${role} nologin`);
      await sql.unsafe(
        `select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`,
        [role],
      );
    });
    const during = submitMany("during", 50); // robots also report while the database is away
    let health = await api(site, "GET", "/healthz");
    for (let i = 0; i < 20 && health.status === 200; i++) {
      health = await api(site, "GET", "/healthz"); // a pooled connection may answer once
    }
    assert.equal(health.status, 503, JSON.stringify(health.body));
    assert.equal(health.body.status, "degraded");
    assert.match(String(health.body.error), /unreachable/);
    const read = await api(site, "GET", `/api/v1/jobs/${before[0]}`);
    assert.equal(read.status, 200, "reads are served from memory meanwhile");
    assert.equal(read.body.job_id, before[0]);
    assert.equal((await api(site, "GET", "/api/v1/robots")).status, 200);

    await admin((sql) => sql.unsafe(`alter role ${role} login`));
    endOutage();
    for (let i = 0; i < 50 && health.status !== 200; i++) {
      health = await api(site, "GET", "/healthz"); // each call reconnects and queries
    }
    assert.equal(health.status, 200, JSON.stringify(health.body));
    assert.equal(health.body.status, "ok");

    const accepted = [...before, ...(await during), ...(await submitMany("after", 50))];
    assert.equal(new Set(accepted).size, 250);
    await watch.until(() => accepted.every((id) => watch.ended.has(id)));
    const report = await checkJobInvariants(site.store, { accepted });
    assert.deepEqual(report.violations, []);
    assert.deepEqual(report.outcomes, { "job.completed": 250 });
  } catch (error) {
    console.error(`orchestrator output:\n${orchestrator?.output().slice(-3000)}`);
    throw error;
  } finally {
    await fleet?.kill();
    await orchestrator?.kill();
    await watch.close();
    await site.drop();
  }
});
