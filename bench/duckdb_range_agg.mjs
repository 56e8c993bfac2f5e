// Optional baseline for bench/agg_join.sh: the same windowed aggregates with DuckDB, as a range
// join (key equality, event time in [t - 7 days, t)) grouped by spine row, with FILTER for the
// 1-day window. node duckdb_range_agg.mjs HIST_CSV SPINE_CSV OUT_CSV [REPEAT] (times in epoch
// microseconds; prints "name ms", the best of REPEAT runs). Loading the CSV files is not timed.
import { DuckDBInstance } from '@duckdb/node-api';

const [hist, spine, out, repeat = '1'] = process.argv.slice(2);
const inst = await DuckDBInstance.create(':memory:');
const c = await inst.connect();
await c.run(`CREATE TABLE hist AS SELECT user_id, ev, f_float1, f_int1
             FROM read_csv('${hist}', header = false,
               columns = {'user_id': 'BIGINT', 'ev': 'BIGINT', 'f_float1': 'DOUBLE', 'f_int1': 'BIGINT'})`);
await c.run(`CREATE TABLE spine AS SELECT row_id, user_id, ts
             FROM read_csv('${spine}', header = false,
               columns = {'row_id': 'BIGINT', 'user_id': 'BIGINT', 'ts': 'BIGINT'})`);
const day = 86400000000n;
let best = Infinity;
for (let i = 0; i < Number(repeat); i++) {
  await c.run(`DROP TABLE IF EXISTS r`);
  const t0 = process.hrtime.bigint();
  await c.run(`CREATE TABLE r AS
    SELECT s.row_id,
           avg(h.f_float1) FILTER (WHERE h.ev >= s.ts - ${day}) AS avg_1d, avg(h.f_float1) AS avg_7d,
           sum(h.f_int1) FILTER (WHERE h.ev >= s.ts - ${day}) AS sum_1d, sum(h.f_int1) AS sum_7d,
           count(h.ev) FILTER (WHERE h.ev >= s.ts - ${day}) AS n_1d, count(h.ev) AS n_7d
    FROM spine s LEFT JOIN hist h ON h.user_id = s.user_id AND h.ev >= s.ts - ${7n * day} AND h.ev < s.ts
    GROUP BY s.row_id`);
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
}
console.log(`duckdb_range_agg ${best.toFixed(0)}`);
await c.run(`COPY r TO '${out}' (HEADER false)`);
