# Randomized calls of every fs_* function: random argument values drawn from pools of
# NULLs, empty and 2-D arrays, 10k-element arrays, 1 MB strings, negative and huge intervals,
# infinite and extreme timestamps, malformed fs_entity literals (random characters), unknown and
# hostile names, existing views, versions and services. Every call runs in a subtransaction
# (rolled back, so each one meets the same registry) as a superuser and as an ordinary role.
# Each call must either succeed or raise a clean ERROR: a SQLSTATE outside class XX (internal)
# and 58 (system), never a crash, an assertion failure or a crash-restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $root = abs_path(dirname(__FILE__) . '/../..');
my $ncalls = $ENV{FS_FUZZ_CALLS} // 2500;    # per role
srand($ENV{FS_FUZZ_SEED} // 20261122);

my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron, feature_store'
cron.database_name = 'postgres'
feature_store.database = 'postgres'
feature_store.cache_size = '1MB'
statement_timeout = '10s'
log_min_messages = 'warning'
});
$node->start;
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
	'-f', "$root/scripts/example_data.sql"], 'example data loads');
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION feature_store;
SELECT fs_register_entity('driver', 'driver_id');
SELECT fs_register_entity('customer', 'customer_id');
SELECT fs_register_entity('pair', ARRAY['a', 'b']);
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', 'driver', created_time => 'created', ttl => '1 day',
                        checks => '{"conv_rate": {"min": 0, "max": 1}}');
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', 'driver', created_time => 'created', ttl => '2 days');
SELECT fs_register_view('customer_profile', 'customer_daily_profile', 'customer');
SELECT fs_register_service('ride_model', '{driver_stats:*,customer_profile:current_balance}');
SELECT fs_materialize('driver_stats', now() - interval '3 days', now());
SELECT fs_materialize('customer_profile', now() - interval '3 days', now());
CREATE TABLE fz_pair (a int, b text, ts timestamptz, x float8);
CREATE SEQUENCE fz_seq;
CREATE VIEW fz_view AS SELECT driver_id, event_timestamp FROM ride_requests;
CREATE ROLE regress_fuzz LOGIN;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO regress_fuzz;
GRANT CREATE ON SCHEMA public TO regress_fuzz;
GRANT USAGE ON SCHEMA cron TO regress_fuzz;
CREATE TABLE fuzz_calls (n int, q text);
GRANT SELECT ON fuzz_calls TO regress_fuzz;
CREATE FUNCTION fuzz_try(n int, q text, OUT state text, OUT message text) LANGUAGE plpgsql AS $$
BEGIN
    RAISE LOG 'fuzz call %', n;  -- a crash names its call in the server log
    BEGIN
        EXECUTE q;
        RAISE EXCEPTION USING ERRCODE = 'P0999';
    EXCEPTION WHEN SQLSTATE 'P0999' THEN
        state := 'ok';
    WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
    END;
END $$;
});

sub pick { return $_[int(rand(@_))]; }

# A random string of separator-heavy characters: malformed fs_entity literals and names.
sub junk
{
	my @c = (split(//, ':(),"\\ @*{}[]\'a1-_'), "\x{e9}", "\t");
	my $s = join('', map { pick(@c) } 1 .. int(rand(14)));
	$s =~ s/'/''/g;
	return "'$s'";
}

my @name = ('NULL', "''", "'driver_stats'", "'driver_stats\@1'", "'driver_stats\@2'", "'driver_stats\@0'",
	"'driver_stats\@-1'", "'driver_stats\@99999999999'", "'customer_profile'", "'ride_model'", "'ride_model\@1'",
	"'driver'", "'customer'", "'nope'", "'a:b'", "'x\@'", "'\@1'", "':'", "'driver_stats:conv_rate'",
	"repeat('n', 64)", "repeat('n', 1000000)", "'\x{3a9}'", "E'a\\nb'", "'\"q\"'",
	"'x''; DROP TABLE driver_hourly_stats; --'", "'fz_new'", "'Driver_Stats'", \&junk);
my @rel = ('NULL', "'driver_hourly_stats'", "'customer_daily_profile'", "'ride_requests'", "'pg_class'",
	"'fz_seq'", "'fz_view'", "'fz_pair'", "'feature_store.feature_view'", "0", "'-1'::oid");
my @refs = ('NULL', "'{}'", "'{NULL}'", "'{driver_stats:*}'", "'{driver_stats:conv_rate,customer_profile:*}'",
	"'{ride_model}'", "'{{a},{b}}'", "array_fill('driver_stats:conv_rate'::text, ARRAY[10000])",
	"ARRAY[repeat('x', 1000000)]", "'{driver_stats\@1:conv_rate}'", "'{driver_stats:*,driver_stats:*}'",
	"ARRAY['driver_stats:' || repeat('f', 70)]", "'{driver_stats:acc_rate}'", "'{driver_stats\@1:*,driver_stats\@2:*}'",
	"ARRAY[''::text]", "'{:}'", "'{\@}'", "'{conv_rate,acc_rate}'", "'{driver_id}'", "'[2:3]={driver_stats:*,ride_model}'");
my @ts = ('NULL', "'infinity'", "'-infinity'", 'now()', "now() - interval '2 days'", "'2000-01-01'",
	"'294276-12-31 23:59:59+00'", "'4713-11-24 00:00:00+00 BC'", "now() + interval '1 year'");
my @interval = ('NULL', "'-1 day'", "'0'", "'1 microsecond'", "'178000000 years'", "'1 day'", "'-178000000 years'",
	"'1 mon -30 days'");
my @bool = ('NULL', 'true', 'false');
my @jsonb = ('NULL', "'{}'", "'[]'", "'\"x\"'", "'{\"conv_rate\": {\"min\": 0}}'", "'{\"conv_rate\": {\"min\": \"x\"}}'",
	"'{\"conv_rate\": {\"allowed\": []}}'", "'{\"conv_rate\": {\"min\": 1e308, \"max\": -1e308}}'",
	"repeat('[', 2000)::text || repeat(']', 2000)", "'{\"avg_daily_trips\": {\"allowed\": [1, \"1\", null, true]}}'",
	"'{\"conv_rate\": {\"not_null\": true, \"min\": 0.5, \"max\": 0.5}}'", "'{\"conv_rate\": null}'");
my @entity = ('NULL::fs_entity', "'driver:1001'::fs_entity", "'driver:-1'::fs_entity", "'customer:c1'::fs_entity",
	"'driver:99999999999999999999'::fs_entity", "'driver:(1,2)'::fs_entity", "fs_entity('driver', 1001)",
	"fs_entity('driver', 'abc'::text)", "fs_entity('customer', 1)", "fs_entity('pair', 1, 'x'::text)",
	"('driver:' || repeat('9', 100000))::fs_entity", "fs_entity('driver', VARIADIC ARRAY[]::int[])",
	"fs_entity('driver', NULL::int)", "fs_entity(repeat('d', 1000000), 1)", "'pair:(1,\"a,b\")'::fs_entity",
	"'driver:\"\"'::fs_entity", "fs_entity('driver', 1.5)", "fs_entity('driver', now())",
	sub { junk() . '::fs_entity' });
my @entities = ('NULL::fs_entity[]', "'{}'::fs_entity[]", "ARRAY['driver:1001', 'driver:1002', 'customer:c2']::fs_entity[]",
	"array_fill('driver:1001'::fs_entity, ARRAY[10000])", "'{NULL}'::fs_entity[]",
	"ARRAY[fs_entity('driver', 1001), NULL]", "'{{driver:1001},{driver:1002}}'::fs_entity[]");
my @schedule = ('NULL', "''", "'* * * * *'", "'0 3 1 1 *'", "'61 * * * *'", "'1 second'", "'5 seconds'",
	"repeat('*', 10000)", "'\@daily'", "'* * * * * *'", "'-1 * * * *'");
my @mode = ('NULL', "''", "'batch'", "'off'", "'stream'", "'BATCH'", \&junk);
my @text = (@name, "'event_timestamp'", "'created'", "'conv_rate'", "'driver_id'");
my @cols = ('t(a int)', 't(request_id bigint, driver_id bigint, customer_id text, event_timestamp timestamptz, conv_rate float8)',
	't(request_id bigint, driver_id bigint, customer_id text, event_timestamp timestamptz, conv_rate float8, acc_rate float8, avg_daily_trips integer)');

sub v { my $x = pick(@_); return ref $x ? $x->() : $x; }

# Optional named arguments: each present with probability 1/2.
sub opt
{
	my @pairs = @_;
	my @out;
	while (@pairs) { my ($k, $pool) = splice(@pairs, 0, 2); push @out, "$k => " . v(@$pool) if rand() < 0.5; }
	return @out ? ', ' . join(', ', @out) : '';
}

my @gen = (
	sub { 'SELECT fs_register_entity(' . v(@name) . ', ' . pick('NULL::text[]', "'{}'::text[]", "'{a,a}'::text[]", "'{driver_id}'::text[]", "ARRAY[repeat('k', 100)]", "'{a,b,c,d,e,f,g,h,i}'::text[]") . opt(description => \@text, key_types => ['NULL::regtype[]', "'{bigint}'::regtype[]", "'{float8}'::regtype[]", "'{}'::regtype[]"]) . ')' },
	sub { 'SELECT fs_register_entity(' . v(@name) . ', ' . v(@text) . '::text' . opt(key_type => ['NULL::regtype', "'bigint'", "'text'", "'point'"]) . ')' },
	sub { 'SELECT fs_register_view(' . v(@name) . ', ' . v(@rel) . ', ' . v(@name) . opt(event_time => \@text, created_time => \@text, features => \@refs, ttl => \@interval, online => \@bool, checks => \@jsonb, description => \@text, owner => \@text, tags => \@jsonb) . ')' },
	sub { 'SELECT fs_register_service(' . v(@name) . ', ' . v(@refs) . opt(description => \@text, owner => \@text, tags => \@jsonb) . ')' },
	sub { 'SELECT fs_drop_view(' . v(@name) . opt(cascade => \@bool) . ')' },
	sub { 'SELECT fs_drop_service(' . v(@name) . ')' },
	sub { 'SELECT fs_drop_entity(' . v(@name) . ')' },
	sub { 'SELECT * FROM fs_point_in_time_join(' . v(@rel) . ', ' . v(@refs) . opt(spine_time => \@text, full_names => \@bool, as_of_created => \@bool) . ') AS ' . pick(@cols) },
	sub { 'SELECT fs_training_columns(' . v(@rel) . ', ' . v(@refs) . opt(spine_time => \@text, full_names => \@bool) . ')' },
	sub { 'SELECT fs_create_training_set(' . v(@name) . ', ' . v(@rel) . ', ' . v(@refs) . opt(spine_time => \@text, full_names => \@bool, as_of_created => \@bool) . ')' },
	sub { 'SELECT * FROM fs_point_in_time_join_stats()' },
	sub { 'SELECT fs_materialize(' . v(@name) . ', ' . v(@ts) . ', ' . v(@ts) . ')' },
	sub { 'SELECT fs_set_online_mode(' . v(@name) . ', ' . v(@mode) . ')' },
	sub { 'SELECT fs_online_reload(' . v(@name) . ')' },
	sub { 'SELECT fs_online(' . v(@entity) . ')' },
	sub { 'SELECT fs_online(' . v(@entity) . ', ' . v(@name) . ')' },
	sub { 'SELECT fs_online_vector(' . v(@entity) . ', ' . v(@name) . ')' },
	sub { 'SELECT count(*) FROM fs_online_batch(' . v(@entities) . (rand() < 0.5 ? ', ' . v(@name) : '') . ')' },
	sub { 'SELECT * FROM fs_online_detail(' . v(@entity) . (rand() < 0.5 ? ', ' . v(@name) : '') . ')' },
	sub { 'SELECT fs_entity_name(' . v(@entity) . '), fs_entity_keys(' . v(@entity) . '), ' . v(@entity) . ' = ' . v(@entity) . ', ' . v(@entity) . '::text' },
	sub { 'SELECT * FROM fs_validate(' . v(@name) . opt(start_ts => \@ts, end_ts => \@ts, on_created => \@bool) . ')' },
	sub { 'SELECT fs_schedule_materialization(' . v(@name) . ', ' . v(@schedule) . ')' },
	sub { 'SELECT fs_unschedule_materialization(' . v(@name) . ')' },
	sub { 'SELECT * FROM fs_stat_online' },
);

my @calls = map { $gen[$_ % @gen]->() } 0 .. $ncalls - 1;    # every function equally often
my $values = join(",\n", map { "($_, " . quote_sql($calls[$_]) . ')' } 0 .. $#calls);
sub quote_sql { my $s = shift; $s =~ s/'/''/g; return "'$s'"; }
$node->safe_psql('postgres', "INSERT INTO fuzz_calls VALUES $values");

my $start_time = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my %total;
# the bootstrap superuser is named after the OS user that ran initdb (postgres, or whoever runs the tests)
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
for my $role ($superuser, 'regress_fuzz')
{
	my $connstr = $node->connstr('postgres') . " user=$role";
	my ($out, $err) = ('', '');
	IPC::Run::run(['psql', '-X', '-q', '-A', '-t', '-F', '|', '-d', $connstr, '-c', 'SET client_min_messages = warning; SET statement_timeout = 0', '-c',
		q{SELECT e.state, count(*), min(c.n), left(min(e.message), 160) FROM fuzz_calls c, LATERAL fuzz_try(c.n, c.q) e GROUP BY 1 ORDER BY 2 DESC}],
		'>', \$out, '2>', \$err, IPC::Run::timeout(600));
	is($err, '', "$role: the run completed") or diag($err);
	my ($calls, $ok, $bad) = (0, 0, '');
	for (split /\n/, $out)
	{
		my ($state, $count, $n, $msg) = split /\|/, $_, 4;
		$calls += $count;
		$ok += $count if $state eq 'ok';
		$total{$state} += $count;
		$bad .= "$state x$count, e.g. call $n: $calls[$n]\n  -> $msg\n" if $state =~ /^(XX|58)/;
	}
	is($calls, $ncalls, "$role: all $ncalls calls ran");
	is($bad, '', "$role: no internal or system error");
	note("$role: $calls calls, $ok succeeded, " . ($calls - $ok) . ' clean errors');
}
note('SQLSTATEs over both roles: ' . join(', ', map { "$_ $total{$_}" } sort { $total{$b} <=> $total{$a} } keys %total));
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $start_time, 'no crash-restart');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|TRAP:|was terminated by exception|PANIC/, 'no backend died');
is($node->safe_psql('postgres', "SELECT string_agg(name || '\@' || version, ',' ORDER BY name, version) FROM fs_views"),
	'customer_profile@1,driver_stats@1,driver_stats@2', 'registry as before (every call was rolled back)');
$node->stop;
done_testing();
