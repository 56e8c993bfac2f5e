# Randomized SQL (sqlsmith) against a database holding the extension, the quickstart example and
# a populated registry: however the fs_* functions and views are called, the server must not
# crash (no backend killed by a signal, no assertion failure, no crash-restart).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my ($sqlsmith) = grep { -x $_ } map { "$_/sqlsmith" } split /:/, $ENV{PATH};
plan skip_all => 'sqlsmith is not installed (scripts/install-deps.sh installs it)' unless $sqlsmith;

my $root = abs_path(dirname(__FILE__) . '/../..');
my $queries = $ENV{FS_SQLSMITH_QUERIES} // 3000;

my $node = PostgreSQL::Test::Cluster->new('smith');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron, feature_store'
cron.database_name = 'smith'
feature_store.database = 'smith'
statement_timeout = '2s'
log_min_messages = 'warning'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE smith');
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('smith'),
	'-f', "$root/scripts/example_data.sql"], 'example data loads');
$node->safe_psql('smith', q{
CREATE EXTENSION feature_store;
SELECT fs_register_entity('driver', 'driver_id');
SELECT fs_register_entity('customer', 'customer_id');
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', 'driver', created_time => 'created', ttl => '1 day');
SELECT fs_register_view('customer_profile', 'customer_daily_profile', 'customer');
SELECT fs_register_service('ride_model', '{driver_stats:*,customer_profile:current_balance}');
-- online rows to serve, so that random fs_online* calls reach the cache and read-through paths
SELECT fs_materialize('driver_stats', now() - interval '3 days', now());
SELECT fs_materialize('customer_profile', now() - interval '3 days', now());
-- sqlsmith runs as an ordinary role: superuser-only functions (pg_terminate_backend, ...) are
-- not what this test is about, and ordinary roles are who hostile input comes from.
CREATE ROLE regress_smith LOGIN;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO regress_smith;
GRANT CREATE ON SCHEMA public TO regress_smith;
});

my $pid_before = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $connstr = $node->connstr('smith') . ' user=regress_smith';
my ($stdout, $stderr);
my $ok = IPC::Run::run([$sqlsmith, "--target=$connstr", "--max-queries=$queries", '--seed=20261122', '--verbose'],
	'>', \$stdout, '2>', \$stderr, IPC::Run::timeout(600));
note("sqlsmith: " . substr($stderr, -600));

is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $pid_before,
	"no crash-restart during $queries random queries");
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|TRAP:|was terminated by exception/, 'no backend died');
is($node->safe_psql('smith', 'SELECT count(*) FROM fs_views'), '2', 'registry intact afterwards');

$node->stop;
done_testing();
