# The online cache on hot standbys (src/online_wal.c): a primary streams to two standbys whose
# cache workers serve their own caches. Readers on both standbys (pgbench) check every answer
# against the standby's own online table read just before and just after it (plpgsql, one
# snapshot per statement): versions only grow, so an answer below "before" is stale and one
# above "after" is from the future. Meanwhile the primary streams inserts into a stream-mode
# view (per-key invalidations), runs incremental materializations of a batch-mode view (whole
# view invalidations) and registers new versions of a third view (registry changes). At the end
# each standby's fs_online equals its online tables for every entity, with the hit rates shown.
# Then: a standby restarted (it trusts its cache only once caught up), the primary killed
# (-m immediate) in the middle of the writers and restarted, and a standby promoted.
# Sensitivity, tried once: with fs_wal_pending always false the readers on the standbys
# report stale answers (the checker fails within seconds).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $N = 300;
my $conf = qq{
shared_preload_libraries = 'feature_store'
feature_store.databases = 'postgres'
feature_store.worker_naptime = '200ms'
max_connections = 40
hot_standby_feedback = on
max_standby_streaming_delay = -1
restart_after_crash = on
};
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->safe_psql('postgres', qq{
CREATE EXTENSION feature_store;
CREATE SEQUENCE ver;
-- versions only grow, and event times grow with them: a key's online value never goes back
CREATE TABLE shist (id bigint, ts timestamptz, v bigint);
CREATE TABLE bhist (id bigint, ts timestamptz, v bigint);
CREATE TABLE dhist (id bigint, ts timestamptz, v bigint);
INSERT INTO shist SELECT i, 'epoch', 0 FROM generate_series(1, $N) i;
INSERT INTO bhist SELECT i, 'epoch', 0 FROM generate_series(1, $N) i;
INSERT INTO dhist SELECT i, 'epoch', 0 FROM generate_series(1, $N) i;
SELECT fs_register_entity('ent', 'id');
SELECT fs_register_view('sv', 'shist', 'ent', event_time => 'ts');
SELECT fs_register_view('bv', 'bhist', 'ent', event_time => 'ts');
SELECT fs_register_view('dv', 'dhist', 'ent', event_time => 'ts', ttl => '1000 days');
SELECT fs_set_online_mode('sv', 'stream');
SELECT fs_materialize(v, '-infinity', 'infinity') FROM unnest(ARRAY['sv', 'bv', 'dv']) v;
-- The checker, run on the standbys: the view's online table before, the answer, the table after.
CREATE FUNCTION probe(k bigint, vname text) RETURNS bigint LANGUAGE plpgsql VOLATILE AS \$\$
DECLARE
  tab text := format('feature_store.%I', 'online_' || (SELECT view_id FROM fs_views WHERE name = vname AND is_serving));
  b bigint; a bigint; r bigint;
BEGIN
  EXECUTE format('SELECT v FROM %s WHERE id = \$1', tab) INTO b USING k;
  r := (fs_online(fs_entity('ent', k), vname) -> vname ->> 'v')::bigint;
  EXECUTE format('SELECT v FROM %s WHERE id = \$1', tab) INTO a USING k;
  IF r IS NULL OR r < b OR r > a THEN
    RAISE EXCEPTION 'view % key %: answer % outside [%, %]', vname, k, r, b, a;
  END IF;
  RETURN r;
END \$\$;
-- fs_online of every entity against the online tables: the number of differences
CREATE FUNCTION diffs(vname text) RETURNS bigint LANGUAGE plpgsql AS \$\$
DECLARE
  tab text := format('feature_store.%I', 'online_' || (SELECT view_id FROM fs_views WHERE name = vname AND is_serving));
  n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM generate_series(1, $N) i LEFT JOIN %s t ON t.id = i
                  WHERE (fs_online(fs_entity(''ent'', i), \$1) -> \$1 ->> ''v'')::bigint IS DISTINCT FROM t.v', tab)
    INTO n USING vname;
  RETURN n;
END \$\$;
});
$primary->backup('b');
my @standbys;
for my $name ('standby1', 'standby2')
{
	my $s = PostgreSQL::Test::Cluster->new($name);
	$s->init_from_backup($primary, 'b', has_streaming => 1);
	$s->start;
	push @standbys, $s;
}
$primary->wait_for_catchup($_) for @standbys;

sub stat_line
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
SELECT string_agg(view || ': ' || hits || ' hits, ' || misses || ' misses', '; ' ORDER BY view)
FROM fs_stat_online WHERE view IN ('sv', 'bv')});
}

for my $s (@standbys)
{
	ok($s->poll_query_until('postgres', q{SELECT pg_is_in_recovery() AND
		(SELECT count(*) FROM fs_stat_online WHERE view IN ('sv', 'bv') AND entries >= 1) = 2}),
		$s->name . ': the cache worker runs on the standby and loaded the views');
	# a hit, after the standby trusts its cache
	ok($s->poll_query_until('postgres', q{SELECT sum(hits) > 0 FROM fs_stat_online, LATERAL (SELECT fs_online(fs_entity('ent', 1))) x
		WHERE view = 'sv'}), $s->name . ': lookups are served from the standby cache');
}

my $dir = PostgreSQL::Test::Utils::tempdir;
open my $fh, '>', "$dir/reader.sql" or die;
print $fh "\\set k random(1, $N)\nSELECT probe(:k, 'sv'), probe(:k, 'bv'), probe(:k % 7 + 1, 'sv');\n";
close $fh;
open $fh, '>', "$dir/stream.sql" or die;
print $fh q{\set k random(1, 20)
\set k2 random(1, 300)
BEGIN;
INSERT INTO shist SELECT k, 'epoch'::timestamptz + x * interval '1 microsecond', x FROM (SELECT :k AS k, nextval('ver') AS x UNION ALL SELECT :k2, nextval('ver')) s;
INSERT INTO bhist SELECT :k, 'epoch'::timestamptz + x * interval '1 microsecond', x FROM nextval('ver') x;
COMMIT;
};
close $fh;
open $fh, '>', "$dir/materialize.sql" or die;
print $fh q{SELECT fs_materialize_incremental('bv');
\sleep 50 ms
};
close $fh;
open $fh, '>', "$dir/ddl.sql" or die;
print $fh q{SELECT fs_register_view('dv', 'dhist', 'ent', event_time => 'ts', ttl => ((1000 + nextval('ver') % 1000) || ' days')::interval);
\sleep 300 ms
};
close $fh;

# Writers on the primary, readers on both standbys, for $secs seconds; returns the readers'
# outputs. $during (optional) runs on the side while they run.
sub run_load
{
	my ($label, $secs, $during) = @_;
	my @pc = ('-h', $primary->host, '-p', $primary->port, 'postgres');
	my %w;
	for my $f ('stream', 'materialize', 'ddl')
	{
		my ($o, $e) = ('', '');
		$w{$f} = [ IPC::Run::start(['pgbench', '-n', '-c', ($f eq 'stream' ? 3 : 1), '-T', $secs, '-f', "$dir/$f.sql", @pc],
			'>', \$o, '2>', \$e), \$o, \$e ];
	}
	my @r;
	for my $s (@standbys)
	{
		my ($o, $e) = ('', '');
		push @r, [ $s, IPC::Run::start(['pgbench', '-n', '-c', 4, '-j', 2, '-T', $secs, '-f', "$dir/reader.sql",
			'-h', $s->host, '-p', $s->port, 'postgres'], '>', \$o, '2>', \$e), \$o, \$e ];
	}
	$during->() if $during;
	for my $x (@r)
	{
		my ($s, $h, $o, $e) = @$x;
		$h->finish;
		my @bad = ($$e =~ /(view \w+ key \d+: answer \S+ outside \[[^\]]*\])/g);
		is(scalar(@bad), 0, "$label: " . $s->name . ": every answer between the table before and after")
		  or diag(join("\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]));
		my ($n) = $$o =~ /number of transactions actually processed: (\d+)/;
		cmp_ok($n // 0, '>', 500, "$label: " . $s->name . ": readers ran (" . ($n // 0) . " lookups x3)")
		  or diag($$o, $$e);
	}
	for my $f (sort keys %w)
	{
		$w{$f}[0]->finish;
	}
	return \%w;
}

sub final_check
{
	my ($label, @nodes) = @_;
	$primary->wait_for_catchup($_) for grep { $_->safe_psql('postgres', 'SELECT pg_is_in_recovery()') eq 't' } @nodes;
	for my $s (@nodes)
	{
		# the standby's launcher resolves pending invalidations within milliseconds; a whole-view
		# change is reloaded by its worker: answers are correct either way (a pending key reads the table)
		is($s->safe_psql('postgres', q{SELECT diffs('sv') + diffs('bv') + diffs('dv')}), '0',
			"$label: " . $s->name . ": fs_online equals the online tables for every entity");
		note("$label: " . $s->name . ": " . stat_line($s));
	}
}

my $w = run_load('streaming', 15);
like(${ $w->{stream}[1] }, qr/number of failed transactions: 0/, 'streaming: the primary\'s writers ran');
cmp_ok($primary->safe_psql('postgres', q{SELECT max(version) FROM fs_views WHERE name = 'dv'}), '>', 5,
	'streaming: the third view got new versions meanwhile');
final_check('streaming', @standbys);
for my $s (@standbys)
{
	my ($h, $m) = split /\|/, $s->safe_psql('postgres', q{SELECT sum(hits), sum(misses) FROM fs_stat_online WHERE view IN ('sv', 'bv')});
	cmp_ok($h, '>', 0, $s->name . ": hit rate " . sprintf('%.1f%%', 100 * $h / (($h + $m) || 1)) . " ($h hits, $m misses)");
}

# A standby restarted: it trusts its cache again only once every transaction in progress when
# it started has ended (a record replayed before its start is not in its new memory).
$standbys[0]->restart;
ok($standbys[0]->poll_query_until('postgres', q{SELECT worker_state NOT IN ('catching up', 'disabled') FROM fs_stat_online WHERE view IS NULL}),
	'restarted standby: fs_stat_online no longer says catching up');
ok($standbys[0]->poll_query_until('postgres', q{SELECT sum(hits) > 0 FROM fs_stat_online, LATERAL (SELECT fs_online(fs_entity('ent', 2))) x
	WHERE view = 'sv'}), 'restarted standby serves from its cache again');
run_load('after standby restart', 8);
final_check('after standby restart', @standbys);

# The primary killed in the middle of the writers, then restarted: transactions whose record
# reached the standbys but whose commit never did are resolved as aborted.
run_load('primary killed', 12, sub {
	sleep 4;
	$primary->stop('immediate');
	sleep 1;
	$primary->start;
});
final_check('after the primary\'s crash', @standbys);

# Promotion: the promoted standby takes writes and serves them through its cache.
$standbys[1]->promote;
$standbys[1]->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()');
$standbys[1]->safe_psql('postgres', q{INSERT INTO shist SELECT i, 'epoch'::timestamptz + x * interval '1 microsecond', x
	FROM generate_series(1, 50) i, LATERAL (SELECT nextval('ver') + 100000000 AS x) s});
is($standbys[1]->safe_psql('postgres', q{SELECT diffs('sv')}), '0', 'promoted: fs_online equals the online table after its own writes');
is($standbys[1]->safe_psql('postgres', q{SELECT count(*) FROM generate_series(1, 50) i
	WHERE (fs_online(fs_entity('ent', i), 'sv') -> 'sv' ->> 'v')::bigint < 100000000}), '0', 'promoted: its writes are served');

done_testing();
