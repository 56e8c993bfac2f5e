-- One round of sql/pit_join_churn.sql: variables round, path, nkeys. Quiet: pit_join_churn.sql
-- prints the summary of all rounds.
\o /dev/null
SELECT ch_gen(:round / 10.0, :nkeys, 3000, 600);
SELECT ch_delete(0.15);
SELECT ch_quiet();
VACUUM ch_a, ch_b, ch_spine, ch_spine_few;
SELECT ch_update();
SELECT ch_quiet();
VACUUM ch_a, ch_b, ch_spine, ch_spine_few;
SELECT ch_final();
\o
INSERT INTO ch_runs
SELECT :round, :'path', as_of, c.*, p.*
FROM ch_pages() p, unnest(ARRAY[false, true]) as_of, LATERAL ch_check(:'path', as_of) c;
