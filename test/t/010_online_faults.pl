# The online cache survives faults: after pg_ctl restart, an immediate shutdown, a kill -9 of a
# backend (postmaster crash-restart) and a killed worker, the worker rebuilds the cache and every
# lookup returns what it returned before (and what the brute-force oracle says). A worker that
# errors logs, backs off, reports the error in fs_stat_online and resumes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FsOnline;

my $n = 300;
my $node = FsOnline::new_node('faults', '4MB');
FsOnline::load($node, $n);
FsOnline::wait_loaded($node, $n, 'after first materialization');
my $oracle = FsOnline::oracle($node, $n);
my $before = FsOnline::answers($node, $n);
is($before, $oracle, 'answers equal the oracle');
like(FsOnline::stat($node, 'hits'), qr/^[1-9]/, 'lookups hit the cache');

sub check_after
{
	my ($what) = @_;
	FsOnline::wait_loaded($node, $n, $what);
	is(FsOnline::stat($node, 'misses'), '0', "$what: cache rebuilt before lookups (no misses yet)");
	is(FsOnline::answers($node, $n), $before, "$what: same answers");
	like(FsOnline::stat($node, 'hits'), qr/^[1-9]/, "$what: served from the cache");
}

$node->restart;
check_after('pg_ctl restart');

$node->stop('immediate');
$node->start;
check_after('immediate shutdown');

# kill -9 of a backend: the postmaster reinitializes shared memory and restarts everything.
my $bg = $node->background_psql('postgres');
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
kill 'KILL', $pid;
eval { $bg->quit; };
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'server back after crash-restart');
check_after('kill -9 of a backend');
like(slurp_file($node->logfile), qr/terminated by signal 9/, 'the log shows the crash-restart');

# The worker dies: the postmaster starts a new one, which reloads the cache.
my $wpid = $node->safe_psql('postgres', 'SELECT worker_pid FROM fs_stat_online WHERE view IS NULL');
ok($wpid > 0, 'worker pid is reported');
kill 'TERM', $wpid;
ok($node->poll_query_until('postgres',
	"SELECT worker_pid IS NOT NULL AND worker_pid <> $wpid AND worker_state = 'idle' FROM fs_stat_online WHERE view IS NULL"),
	'a new worker was started');
is(FsOnline::answers($node, $n), $before, 'same answers after a worker restart');

# The worker errors: a session holds an exclusive lock on the online table while a reload is
# requested; the worker's load hits lock_timeout, logs, backs off, and resumes after release.
my $table = $node->safe_psql('postgres', "SELECT format('feature_store.online_%s', view_id) FROM fs_views WHERE name = 'stats'");
my $locker = $node->background_psql('postgres');
$locker->query_safe("BEGIN; LOCK TABLE $table IN ACCESS EXCLUSIVE MODE");
$node->safe_psql('postgres', "SELECT fs_online_reload('stats')");
ok($node->poll_query_until('postgres',
	"SELECT worker_state = 'error backoff' AND last_error LIKE '%lock%' FROM fs_stat_online WHERE view IS NULL"),
	'worker reports the error and backs off');
like(slurp_file($node->logfile), qr/feature_store cache worker failed, retrying in/, 'worker logged the error');
$locker->query_safe('COMMIT');
$locker->quit;
FsOnline::wait_loaded($node, $n, 'after the error cleared');
is(FsOnline::answers($node, $n), $before, 'same answers after the worker recovered');

$node->stop;
done_testing();
