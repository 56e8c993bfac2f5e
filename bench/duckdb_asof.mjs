// Optional baseline for bench/pit_join.sh: the same point-in-time join with DuckDB's ASOF JOIN.
// node duckdb_asof.mjs HIST_CSV SPINE_CSV OUT_CSV [REPEAT]  (times in epoch microseconds; prints
// "name ms", the best of REPEAT runs)
// Loading the CSV files is not timed. Two queries are timed: the plain ASOF LEFT JOIN (which
// picks an arbitrary row among equal event times) and the exact one, which first keeps the
// latest created time per (user, event time) as rule 4 of docs/semantics.md requires; only the exact one's
// result is written to OUT_CSV for the checksum comparison.
import { DuckDBInstance } from '@duckdb/node-api';

const [hist, spine, out, repeat = '1'] = process.argv.slice(2);
const inst = await DuckDBInstance.create(':memory:');
const c = await inst.connect();
await c.run(`CREATE TABLE hist AS SELECT user_id, make_timestamp(ev) AS event_ts, make_timestamp(cr) AS created_ts,
               f_float1, f_float2, f_int1, f_text1
             FROM read_csv('${hist}', header = false,
               columns = {'user_id': 'BIGINT', 'ev': 'BIGINT', 'cr': 'BIGINT', 'f_float1': 'DOUBLE',
                          'f_float2': 'DOUBLE', 'f_int1': 'BIGINT', 'f_text1': 'VARCHAR'})`);
await c.run(`CREATE TABLE spine AS SELECT row_id, user_id, make_timestamp(ts) AS ts
             FROM read_csv('${spine}', header = false,
               columns = {'row_id': 'BIGINT', 'user_id': 'BIGINT', 'ts': 'BIGINT'})`);

async function timed(name, table, sql) {
  let best = Infinity;
  for (let i = 0; i < Number(repeat); i++) {
    await c.run(`DROP TABLE IF EXISTS ${table}`);
    const t0 = process.hrtime.bigint();
    await c.run(`CREATE TABLE ${table} AS ${sql}`);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(`${name} ${best.toFixed(0)}`);
}
const select = (source) => `
  SELECT s.row_id,
         CASE WHEN h.event_ts >= s.ts - INTERVAL 30 DAY THEN h.f_float1 END AS f_float1,
         CASE WHEN h.event_ts >= s.ts - INTERVAL 30 DAY THEN h.f_float2 END AS f_float2,
         CASE WHEN h.event_ts >= s.ts - INTERVAL 30 DAY THEN h.f_int1 END AS f_int1,
         CASE WHEN h.event_ts >= s.ts - INTERVAL 30 DAY THEN h.f_text1 END AS f_text1
  FROM spine s ASOF LEFT JOIN ${source} h ON s.user_id = h.user_id AND s.ts >= h.event_ts`;
await timed('duckdb_asof_plain', 'r_plain', select('hist'));
await timed('duckdb_asof_exact', 'r_exact', select(`(SELECT * FROM hist
  QUALIFY row_number() OVER (PARTITION BY user_id, event_ts ORDER BY created_ts DESC NULLS LAST) = 1)`));
await c.run(`COPY r_exact TO '${out}' (HEADER false)`);
