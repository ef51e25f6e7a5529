/**
 * Issue 5, item 7, for real: `pg_ctl restart` of the PostgreSQL server under load. The
 * test starts a private cluster (Debian's `initdb` and `pg_ctl`, see
 * `tests/_private_postgres.ts`; the shared server other tests use is not touched), runs an
 * orchestrator process and three real robots on it, and while jobs are submitted and run:
 *
 * 1. `pg_ctl restart -m fast` (one command; the server is away for a fraction of a
 *    second, so `/healthz` is sampled meanwhile but only required to be `ok` after);
 * 2. `pg_ctl stop -m immediate` (a crash of the server: WAL recovery at the next start),
 *    `/healthz` answers 503 `degraded` and reads are served from memory while it is down,
 *    then `pg_ctl start`, and `/healthz` is `ok` again.
 *
 * Then every accepted job ends exactly once, nothing is lost (the invariants of
 * `audit/job_invariants.ts` over the whole log), and the orchestrator's own read models
 * show every job completed (it resynchronised with the log).
 *
 * Skipped, with a message, when PostgreSQL's server binaries are not installed.
 */
import assert from "node:assert/strict";
import { checkJobInvariants } from "../../audit/mod.ts";
import {
  findPostgresBin,
  type PrivatePostgres,
  startPrivatePostgres,
} from "../_private_postgres.ts";
import {
  api,
  API_TOKEN,
  type Child,
  type FaultSite,
  openFaultSite,
  startOrchestratorProcess,
  startRobotFleet,
} from "./_processes.ts";
import { type LogWatch, watchLog } from "./_log_watch.ts";

const WORKFLOW = { metadata: { name: "pg-restart-noop" }, nodes: {}, connections: [] };
const bin = findPostgresBin();
if (!bin) {
  console.warn(
    "postgres_restart_test: SKIPPED, no PostgreSQL server binaries (initdb, pg_ctl) in " +
      "/usr/lib/postgresql/<version>/bin (apt-get install postgresql, or set PG_BIN_DIR)",
  );
}

Deno.test({
  name:
    "pg_ctl restart and a server crash under load: /healthz degraded then ok, nothing lost, every job ends once",
  ignore: !bin,
  async fn() {
    const t0 = performance.now();
    const phases: string[] = [];
    const phase = (name: string) =>
      phases.push(`${name} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const pg: PrivatePostgres = await startPrivatePostgres(bin!);
    phase("cluster up");
    let site: FaultSite | null = null;
    let watch: LogWatch | null = null;
    let orchestrator: Child | null = null;
    let fleet: Child | null = null;
    try {
      site = await openFaultSite({
        databaseUrl: pg.url,
        // Commits wait for their WAL write: a crash of the server must not lose one.
        asyncCommit: false,
        config: { HEARTBEAT_INTERVAL: "2", HEARTBEAT_TIMEOUT: "60", RECONNECT_GRACE: "30" },
      });
      const s = site;
      watch = watchLog(s.store);
      orchestrator = await startOrchestratorProcess(s);
      fleet = await startRobotFleet(s, { count: 3, maxJobs: 8, prefix: "pg-restart-robot" });
      phase("orchestrator and robots up");

      /** Resolves while the server is up; submissions refused meanwhile wait for it. */
      let up: Promise<void> = Promise.resolve();
      const refusals: string[] = [];
      const submit = async (key: string): Promise<string> => {
        for (let tries = 0; tries < 20; tries++) {
          const res = await fetch(`${s.url}/api/v1/jobs`, {
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
          // The only refusal allowed while the server is away: 503, to be sent again.
          assert.equal(res.status, 503, JSON.stringify(body));
          assert.equal(body.error.code, "store_unavailable");
          refusals.push(key);
          await up;
        }
        throw new Error(`submission ${key} kept failing`);
      };
      /** Submits `n` jobs, 8 at a time; `onEach` runs after each acceptance. */
      const load = async (prefix: string, n: number, onEach: (i: number) => void = () => {}) => {
        const ids: string[] = [];
        let next = 0;
        await Promise.all(Array.from({ length: 8 }, async () => {
          while (next < n) {
            const i = next++;
            ids.push(await submit(`${prefix}-${i}`));
            onEach(ids.length);
          }
        }));
        return ids;
      };
      const health = async () => (await api(s, "GET", "/healthz")).body.status as string;

      // 1. pg_ctl restart -m fast while jobs are submitted and run.
      let restarting: Promise<void> | null = null;
      const seen = new Set<string>();
      const first = await load("restart", 60, (accepted) => {
        if (accepted !== 20) return;
        let done = false;
        const restart = pg.restart("fast").finally(() => (done = true));
        up = restart; // a submission refused meanwhile is sent again once the server is up
        // Samples /healthz while the restart runs (one request at a time).
        restarting = Promise.all([
          restart,
          (async () => {
            while (!done) seen.add(await health());
          })(),
        ]).then(() => {});
      });
      assert.ok(restarting, "the restart ran");
      await restarting;
      let status = await health();
      for (let i = 0; i < 50 && status !== "ok"; i++) status = await health();
      assert.equal(status, "ok");
      phase("restart done");
      console.log(
        `pg_ctl restart -m fast: /healthz said ${JSON.stringify([...seen])} meanwhile; ` +
          `${refusals.length} submissions answered 503 and sent again`,
      );

      // 2. The server crashes (immediate stop) while jobs run, and is started again.
      const during = load("crash", 40);
      let endOutage!: () => void;
      up = new Promise((resolve) => (endOutage = resolve));
      await pg.stop("immediate");
      const degraded = await api(s, "GET", "/healthz");
      assert.equal(degraded.status, 503, JSON.stringify(degraded.body));
      assert.equal(degraded.body.status, "degraded");
      assert.match(String(degraded.body.error), /unreachable/);
      const read = await api(s, "GET", `/api/v1/jobs/${first[0]}`);
      assert.equal(read.status, 200, "reads are served from memory meanwhile");
      assert.equal(read.body.job_id, first[0]);
      assert.equal((await api(s, "GET", "/api/v1/robots")).status, 200);
      await pg.start();
      endOutage();
      status = await health();
      for (let i = 0; i < 50 && status !== "ok"; i++) status = await health(); // reconnects
      assert.equal(status, "ok");

      phase("crash and start done");
      const accepted = [...first, ...(await during), ...(await load("after", 20))];
      assert.equal(new Set(accepted).size, 120);
      const w = watch;
      await w.until(() => accepted.every((id) => w.ended.has(id)));
      phase("all ended");
      const report = await checkJobInvariants(s.store, { accepted });
      assert.deepEqual(report.violations, []);
      assert.deepEqual(report.outcomes, { "job.completed": 120 });

      // Resynchronised: a submission is answered once the read models show it, and they
      // apply the log in order, so after this one they hold every earlier completion.
      await submit("probe");
      const views = await Promise.all(accepted.map((id) => api(s, "GET", `/api/v1/jobs/${id}`)));
      assert.deepEqual(
        views.filter((v) => v.body.status !== "completed").map((v) => v.body),
        [],
        "the orchestrator's read models show every job completed",
      );
      phase("read models checked");
      console.log(phases.join(", "));
    } catch (error) {
      console.error(`orchestrator output:\n${orchestrator?.output().slice(-3000)}`);
      console.error(`server log:\n${(await pg.log()).slice(-3000)}`);
      throw error;
    } finally {
      await fleet?.kill();
      await orchestrator?.kill();
      await watch?.close();
      await site?.drop().catch((e) => console.error("drop failed:", e));
      await pg.destroy();
    }
  },
});
