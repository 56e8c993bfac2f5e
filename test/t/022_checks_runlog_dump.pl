# Quarantine and run log survive pg_dump/pg_restore: same rows, sequences continue, quarantine
# stays idempotent (a re-run after restore adds nothing) and stays closed to PUBLIC.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
# the run log's test drivers are not in the extension: declared from the tests' include
my $runlog_test = slurp_file(abs_path(dirname(__FILE__) . '/../..') . '/sql/include/runlog_test.sql');

my $node = PostgreSQL::Test::Cluster->new('qdump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'feature_store'");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', $runlog_test);
$node->safe_psql('src', q{
CREATE EXTENSION feature_store;
CREATE TABLE qd_hist (k int, ev timestamptz, cr timestamptz, x float8, t text);
INSERT INTO qd_hist SELECT g % 7, '2026-01-01'::timestamptz + g * interval '1 hour', now(),
       CASE WHEN g % 5 = 0 THEN NULL ELSE g / 10.0 END, (ARRAY['a', 'b', 'c'])[1 + g % 3]
FROM generate_series(1, 60) g;
SELECT fs_register_entity('qd_k', 'k');
SELECT fs_register_view('qd', 'qd_hist', 'qd_k', 'ev', 'cr',
    checks => '{"x": {"not_null": true, "max": 3}, "t": {"allowed": ["a", "b"]}}');
SELECT fs_test.run_logged_test('qd', 'batch', 'SELECT 1', quarantine => true);
});
$node->psql('src', q{SELECT fs_test.run_logged_test('qd', 'incremental', 'SELECT 1/0')});

my $fingerprint = q{
SELECT concat_ws(E'\n',
  (SELECT string_agg(q::text, E'\n' ORDER BY quarantine_id) FROM feature_store.quarantine q),
  (SELECT string_agg(r::text, E'\n' ORDER BY run_id) FROM feature_store.materialization_run r))
};
my $before = $node->safe_psql('src', $fingerprint);
is($node->safe_psql('src', q{SELECT count(*) FROM fs_quarantine}),
   $node->safe_psql('src', q{SELECT count(*) FROM qd_hist WHERE x IS NULL OR x > 3 OR t NOT IN ('a', 'b')}),
   'every failing row quarantined before the dump');
is($node->safe_psql('src', q{SELECT string_agg(outcome, ',' ORDER BY run_id) FROM fs_runs}), 'success,error',
   'both runs logged before the dump');

my $dump = $node->basedir . '/src.dump';
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src')], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump], 'pg_restore');
is($node->safe_psql('dst', $fingerprint), $before, 'quarantine and run log restored identically');

is($node->safe_psql('dst', q{SELECT fs_test.run_logged_test('qd', 'batch', 'SELECT 1', quarantine => true)}), '1',
   'a run after restore');
is($node->safe_psql('dst', q{SELECT run_id > 2 AND rows_quarantined = 0 FROM fs_runs ORDER BY run_id DESC LIMIT 1}), 't',
   'run ids continue and nothing is quarantined twice');
$node->safe_psql('dst', 'CREATE ROLE qd_plain');
my ($ret, $out, $err) = $node->psql('dst', 'SET ROLE qd_plain; SELECT count(*) FROM feature_store.quarantine');
like($err, qr/permission denied for table quarantine/, 'the quarantine stays closed to PUBLIC after restore');
is($node->safe_psql('dst', 'SET ROLE qd_plain; SELECT count(*) FROM fs_quarantine'), '0',
   'and fs_quarantine shows nothing to a role without SELECT on the source');

$node->stop;
done_testing();
