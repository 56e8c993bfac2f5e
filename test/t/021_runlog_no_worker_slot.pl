# A failed run's record is written by a background worker. Without a free worker slot
# (max_worker_processes = 0 here) the failure still reaches the caller with its own error,
# plus a WARNING (insufficient_resources, hint on max_worker_processes) carrying the error
# text; nothing is lost silently and nothing crashes. Successful runs need no worker.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
# the run log's test drivers are not in the extension: declared from the tests' include
my $runlog_test = slurp_file(abs_path(dirname(__FILE__) . '/../..') . '/sql/include/runlog_test.sql');

my $node = PostgreSQL::Test::Cluster->new('noslot');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'feature_store'
max_worker_processes = 0
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
CREATE TABLE ns_hist (k int, ev timestamptz, x float8);
SELECT fs_register_entity('ns_k', 'k');
SELECT fs_register_view('ns_view', 'ns_hist', 'ns_k', 'ev');
});
$node->safe_psql('postgres', $runlog_test);

my ($ret, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
SELECT fs_test.run_logged_test('ns_view', 'batch', 'SELECT 1/0')});
isnt($ret, 0, 'the failing run fails');
like($err, qr/ERROR:\s+22012: division by zero/, 'with its own error');
like($err, qr/WARNING:\s+53000: could not record failed materialization run \d+ of feature view "ns_view": no background worker slot available/,
	 'a warning says the record could not be written (insufficient_resources)');
like($err, qr/DETAIL:\s+The run failed with: division by zero/, 'the warning carries the error text');
like($err, qr/HINT:\s+Raise max_worker_processes \(now 0\)/, 'and hints at max_worker_processes');
is($node->safe_psql('postgres', 'SELECT count(*) FROM fs_runs'), '0', 'no record could be written');

is($node->safe_psql('postgres', q{SELECT fs_test.run_logged_test('ns_view', 'batch', 'SELECT 1')}),
   '1', 'a successful run works without a worker');
is($node->safe_psql('postgres', q{SELECT outcome FROM fs_runs}), 'success', 'and is recorded');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');

# With worker slots again, failed runs are recorded even when the extension owner (who writes
# the record) may not log in: the worker connects without a role and writes as the owner.
$node->append_conf('postgresql.conf', 'max_worker_processes = 8');
$node->restart;
$node->safe_psql('postgres', q{
CREATE ROLE ns_owner SUPERUSER NOLOGIN;
CREATE DATABASE ns_db OWNER ns_owner;
});
$node->safe_psql('ns_db', q{
SET ROLE ns_owner;
CREATE EXTENSION feature_store;
CREATE TABLE ns_hist (k int, ev timestamptz, x float8);
SELECT fs_register_entity('ns_k', 'k');
SELECT fs_register_view('ns_view', 'ns_hist', 'ns_k', 'ev');
});
$node->safe_psql('ns_db', $runlog_test);
is($node->safe_psql('ns_db', q{SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'feature_store'}),
   'ns_owner', 'the extension is owned by a NOLOGIN role');
($ret, $out, $err) = $node->psql('ns_db', q{SELECT fs_test.run_logged_test('ns_view', 'batch', 'SELECT 1/0')});
like($err, qr/division by zero/, 'the failing run fails');
unlike($err, qr/WARNING/, 'without a warning');
is($node->safe_psql('ns_db', q{SELECT outcome || ':' || error FROM fs_runs}), 'error:division by zero',
   'the failed run is recorded');

$node->stop;
done_testing();
