# Load with faults. For at least 60 s, 8 pgbench clients call fs_online on random
# entities while, at the same time, a materializer keeps materializing the view and a streamer
# keeps inserting micro-batches into its source. The cache worker is SIGKILLed once and a backend
# once (each is a postmaster crash-restart: Postgres reinitializes shared memory when any process
# attached to it dies by a signal). The test fails if
#   - a lookup fails (error, or an entity without value) outside a crash-restart window,
#   - the readers do not reconnect and succeed after each window,
#   - a streaming batch whose INSERT was acknowledged is missing afterwards (nothing lost),
#   - an online value during the load is not a row of the history (invented or torn),
#   - after the load, any entity's fs_online value differs from the point-in-time join
#     (fs_point_in_time_join, the server's offline oracle) at the last materialized time.
# Figures (TPS, errors, faults) are printed with note() and quoted in docs/operations.md.
#
# The view is in stream mode (the streamer's INSERTs reach the online store by themselves, through
# the source's statement triggers) and the materializer runs incremental materializations.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use POSIX ();
use Time::HiRes qw(time sleep);
use FsOnline;

my $N = 500;                         # entities
my $LOAD_SECONDS = $ENV{FS_LOAD_SECONDS} // 62;
my $MATERIALIZE_SQL = q{SELECT fs_materialize_incremental('lv')};

my $node = FsOnline::new_node('load', '8MB', "max_connections = 50\nlog_min_messages = warning\n");
$node->safe_psql('postgres', qq{
CREATE EXTENSION feature_store;
CREATE TABLE lhist (id bigint, ts timestamptz, created timestamptz, v bigint, batch bigint, note text);
INSERT INTO lhist SELECT i, now() - interval '1 day', now() - interval '1 day', 0, 0, 'initial ' || i
FROM generate_series(1, $N) i;
SELECT fs_register_entity('lent', 'id');
SELECT fs_register_view('lv', 'lhist', 'lent', event_time => 'ts', created_time => 'created');
SELECT fs_materialize('lv', '-infinity', now());
SELECT fs_set_online_mode('lv', 'stream');
});
ok($node->poll_query_until('postgres',
	"SELECT (SELECT entries FROM fs_stat_online WHERE view = 'lv') = $N"), 'cache loaded');

my $dir = PostgreSQL::Test::Utils::tempdir;
my @conn = ('-h', $node->host, '-p', $node->port);
my $t0 = time;
my $deadline = $t0 + $LOAD_SECONDS;

# Each load process is a forked child writing one line per event to its own file;
# POSIX::_exit keeps the children away from the parent's END blocks (node teardown).
sub spawn
{
	my ($name, $body) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	return $pid if $pid;
	open my $log, '>', "$dir/$name.log" or POSIX::_exit(1);
	$log->autoflush(1);
	$body->($log);
	close $log;
	POSIX::_exit(0);
}

sub psql_ok
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', @conn, '-d', 'postgres', '-c', $sql],
		'>', \$out, '2>', \$err);
	return ($ok, $out, $err);
}

# Readers: pgbench in segments of 5 s (pgbench does not reconnect after a crash-restart, the next
# segment does). A lookup that errors or finds no value aborts its client.
open my $rs, '>', "$dir/reader.sql" or die;
print $rs qq{\\set k random(1, $N)
SELECT 1 / (fs_online(fs_entity('lent', :k)) -> 'lv' ->> 'v' IS NOT NULL)::int;
};
close $rs;
my $reader = spawn('readers', sub {
	my ($log) = @_;
	while (time < $deadline - 0.5)
	{
		my $len = int($deadline - time);
		$len = 5 if $len > 5;
		$len = 1 if $len < 1;
		my ($out, $err) = ('', '');
		my $s = time;
		IPC::Run::run(['pgbench', '-n', '-c', '8', '-j', '2', '-T', $len, '-f', "$dir/reader.sql", @conn, 'postgres'],
			'>', \$out, '2>', \$err);
		my $e = time;
		my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
		my $aborted = () = $err =~ /client \d+ aborted/g;
		my $connfail = ($err =~ /connection to server .* failed|could not connect/) ? 1 : 0;
		$processed //= 0;
		print $log join(' ', $s, $e, $processed, $aborted, $connfail), "\n";
		print $log "# $_\n" for grep { /aborted|ERROR|FATAL|failed/ } split /\n/, $err;
		sleep 0.2 if $aborted || $connfail;
	}
});

# Streamer: micro-batches of 20 rows (one INSERT each) with a batch number; an acknowledged
# batch is logged and must exist afterwards.
my $streamer = spawn('streamer', sub {
	my ($log) = @_;
	my $b = 0;
	while (time < $deadline)
	{
		$b++;
		my ($ok) = psql_ok(qq{INSERT INTO lhist SELECT 1 + (($b * 37 + g * 101) % $N), clock_timestamp(), clock_timestamp(),
                  $b * 100 + g, $b, 'batch $b' FROM generate_series(1, 20) g});
		print $log join(' ', time, $b, $ok ? 'ack' : 'fail'), "\n";
		sleep($ok ? 0.05 : 0.3);
	}
});

# Materializer: keeps materializing recent windows.
my $materializer = spawn('materializer', sub {
	my ($log) = @_;
	while (time < $deadline)
	{
		my ($ok) = psql_ok($MATERIALIZE_SQL);
		print $log join(' ', time, $ok ? 'ok' : 'fail'), "\n";
		sleep 0.3;
	}
});

# Faults, from the parent: each kill starts a window that ends when the server accepts
# connections and the cache worker runs again (plus 2 s for clients in flight).
my @windows;
sub wait_recovered
{
	my ($what, $old_worker) = @_;
	my $start = time;
	while (time - $start < 60)
	{
		my ($ok, $out) = psql_ok(q{SELECT worker_pid FROM fs_stat_online WHERE view IS NULL AND worker_state IN ('idle', 'loading')});
		chomp $out;
		last if $ok && $out =~ /^\d+$/ && $out != $old_worker;
		sleep 0.1;
	}
	my $end = time;
	note(sprintf("%s: recovered after %.1f s", $what, $end - $start));
	return $end;
}

sleep(15);
my $wpid = $node->safe_psql('postgres', 'SELECT worker_pid FROM fs_stat_online WHERE view IS NULL');
ok($wpid =~ /^\d+$/ && $wpid > 0, "cache worker pid $wpid");
my $k1 = time;
kill 'KILL', $wpid;
push @windows, [$k1, wait_recovered('worker SIGKILL', $wpid) + 2];

sleep(15);
# A reading backend: pgbench segments end every 5 s, so the chosen pid may be gone before
# the signal; pick again until a kill is delivered.
my ($bpid, $wpid2, $k2) = ('', '', 0);
for (1 .. 100)
{
	($bpid, $wpid2) = split /\|/, $node->safe_psql('postgres', q{
SELECT (SELECT pid FROM pg_stat_activity WHERE query LIKE '%fs_online(fs_entity(''lent''%' AND pid <> pg_backend_pid() ORDER BY state = 'active' DESC LIMIT 1),
       (SELECT worker_pid FROM fs_stat_online WHERE view IS NULL)});
	if ($bpid =~ /^\d+$/)
	{
		$k2 = time;
		last if kill('KILL', $bpid) == 1;
	}
	sleep 0.05;
}
ok($bpid =~ /^\d+$/ && $k2 > 0, "a reading backend was killed: $bpid");
push @windows, [$k2, wait_recovered('backend SIGKILL', $wpid2) + 2];

waitpid($_, 0) for ($reader, $streamer, $materializer);
my $elapsed = time - $t0;
cmp_ok($elapsed, '>=', 60, sprintf('load ran %.1f s', $elapsed));

# Readers: classify every segment.
sub in_window
{
	my ($s, $e) = @_;
	for my $w (@windows) { return 1 if $s <= $w->[1] && $e >= $w->[0]; }
	return 0;
}
my ($lookups, $busy, $errs_in, $errs_out, $connfail_out) = (0, 0, 0, 0, 0);
my %after;    # window index => a clean segment started after it
my @bad;
for my $line (split /\n/, slurp_file("$dir/readers.log"))
{
	if ($line =~ /^#/) { push @bad, $line if @bad < 20; next; }
	my ($s, $e, $processed, $aborted, $connfail) = split / /, $line;
	$lookups += $processed;
	$busy += $e - $s;
	if (in_window($s, $e)) { $errs_in += $aborted + $connfail; }
	else { $errs_out += $aborted; $connfail_out += $connfail; }
	for my $i (0 .. $#windows)
	{
		$after{$i} = 1 if $s >= $windows[$i][1] - 2 && !$aborted && !$connfail && $processed > 0;
	}
}
my $tps = $lookups / $elapsed;
note(sprintf('readers: %d lookups in %.1f s: %.0f TPS (8 clients); failed lookups: %d inside crash windows, %d outside',
	$lookups, $elapsed, $tps, $errs_in, $errs_out + $connfail_out));
is($errs_out, 0, 'no failed lookup outside the crash-restart windows') or diag(join "\n", @bad);
is($connfail_out, 0, 'no failed connection outside the crash-restart windows');
ok($after{0} && $after{1}, 'readers reconnected and succeeded after each crash-restart');
cmp_ok($lookups, '>', 1000, "readers did real work ($lookups lookups)");

# Streamer: every acknowledged batch is there, complete.
my (@acked, $sfail);
for (split /\n/, slurp_file("$dir/streamer.log"))
{
	my (undef, $b, $st) = split / /;
	if ($st eq 'ack') { push @acked, $b } else { $sfail++ }
}
$sfail //= 0;
cmp_ok(scalar @acked, '>', 50, scalar(@acked) . " streaming batches acknowledged ($sfail failed in the windows)");
my $acked_list = join(',', @acked);
is($node->safe_psql('postgres', qq{
SELECT count(*) FROM unnest('{$acked_list}'::bigint[]) b
WHERE (SELECT count(*) FROM lhist h WHERE h.batch = b) <> 20}), '0', 'no acknowledged streaming row was lost');

my @mat = split /\n/, slurp_file("$dir/materializer.log");
my $mok = grep { / ok$/ } @mat;
cmp_ok($mok, '>', 20, "materializations during the load: $mok succeeded of " . scalar(@mat));

# During the load, every online value was a real history row (checked before the final run).
is($node->safe_psql('postgres', q{
SELECT count(*) FROM generate_series(1, 500) i
CROSS JOIN LATERAL fs_online_detail(fs_entity('lent', i), 'lv') d
WHERE d.feature = 'v' AND NOT EXISTS (SELECT 1 FROM lhist h WHERE h.id = i AND h.v = d.value::text::bigint AND h.ts = d.event_ts)}),
	'0', 'every online value is a row of the history');

# Last materialization after the load; the point-in-time join at its end time is the oracle.
$node->safe_psql('postgres', qq{
BEGIN;
SELECT fs_materialize('lv', '-infinity', now());
CREATE TABLE lspine AS SELECT i::bigint AS id, now() AS ts FROM generate_series(1, $N) i;
COMMIT;
});
ok($node->poll_query_until('postgres', q{SELECT worker_state = 'idle' FROM fs_stat_online WHERE view IS NULL}),
	'worker idle');
my $diff = $node->safe_psql('postgres', q{
SELECT count(*) FROM fs_point_in_time_join('lspine', '{lv:v,lv:note}', spine_time => 'ts')
       AS p(id bigint, ts timestamptz, v bigint, note text)
WHERE (fs_online(fs_entity('lent', p.id), 'lv') -> 'lv' ->> 'v')::bigint IS DISTINCT FROM p.v
   OR fs_online(fs_entity('lent', p.id), 'lv') -> 'lv' ->> 'note' IS DISTINCT FROM p.note});
is($diff, '0', "after the load, every entity's online value equals the point-in-time join at the last materialized time");
is($node->safe_psql('postgres', q{SELECT count(*) FROM lspine WHERE fs_online(fs_entity('lent', id)) IS NULL}), '0',
	'every entity is served');
my $hits = $node->safe_psql('postgres', q{SELECT hits FROM fs_stat_online WHERE view = 'lv'});
my $log = slurp_file($node->logfile);
my $kills = () = $log =~ /terminated by signal 9/g;
is($kills, 2, 'the server log shows exactly the two SIGKILLs');
unlike($log, qr/TRAP:|PANIC/, 'no assertion failure or PANIC');
note(sprintf('faults: worker SIGKILL at +%.1f s, backend SIGKILL at +%.1f s; windows %.1f s and %.1f s; '
	  . 'streaming batches acked %d, failed %d; materializations %d ok of %d; cache hits since last restart %s',
	$k1 - $t0, $k2 - $t0, $windows[0][1] - $windows[0][0], $windows[1][1] - $windows[1][0],
	scalar @acked, $sfail, $mok, scalar @mat, $hits));
$node->stop;
done_testing();
