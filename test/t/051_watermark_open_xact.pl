# The watermark guarantee with concurrent writers: a transaction that started before an
# incremental run and commits after it, with created time = its start (DEFAULT now()), must not
# be lost. The run's window stops before the oldest open transaction's start, so the row is
# picked up by the next run; a run with no writer open reaches (almost) now.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('wm');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'feature_store'
feature_store.database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
CREATE TABLE h (uid int, ev timestamptz, cr timestamptz DEFAULT now(), x float8);
INSERT INTO h (uid, ev, x) VALUES (1, '2026-01-01', 1), (2, '2026-01-01', 2);
SELECT fs_register_entity('u', 'uid');
SELECT fs_register_view('hv', 'h', 'u', 'ev', 'cr');
});
is($node->safe_psql('postgres', q{SELECT fs_materialize_incremental('hv')}), '2', 'first run');

# A writer opens a transaction, and inserts (created time = its start) but does not commit yet.
my ($in, $out, $err) = ('', '', '');
my $timer = IPC::Run::timeout(60);
my $h = IPC::Run::start(['psql', '-X', '-A', '-t', '-d', $node->connstr('postgres')],
						'<', \$in, '>', \$out, '2>', \$err, $timer);
$in .= "BEGIN;\nSELECT 'started';\n";
$h->pump until $out =~ /started/;
sleep 1;
$in .= "INSERT INTO h (uid, ev, x) VALUES (1, '2026-06-01', 42);\nSELECT 'inserted';\n";
$h->pump until $out =~ /inserted/;

is($node->safe_psql('postgres', q{SELECT fs_materialize_incremental('hv')}), '0',
   'a run while the writer is open does not see its row');
is($node->safe_psql('postgres', q{
	SELECT watermark < (SELECT xact_start FROM pg_stat_activity WHERE query LIKE '%inserted%' AND pid <> pg_backend_pid())
	FROM fs_stat_views WHERE view = 'hv'}),
   't', 'and its watermark stays below the open transaction\'s start');

$in .= "COMMIT;\nSELECT 'committed';\n";
$h->pump until $out =~ /committed/;
$in .= "\\q\n";
$h->finish;

is($node->safe_psql('postgres', q{SELECT fs_materialize_incremental('hv')}), '1',
   'the next run picks the late-committed row up');
my $tab = $node->safe_psql('postgres', q{SELECT format('feature_store.online_%s', view_id) FROM fs_views WHERE name = 'hv'});
is($node->safe_psql('postgres', qq{SELECT string_agg(uid || '=' || x, ',' ORDER BY uid) FROM $tab}), '1=42,2=2',
   'online table equals the latest rows');
is($node->safe_psql('postgres', q{SELECT watermark > now() - interval '10 seconds' FROM fs_stat_views WHERE view = 'hv'}),
   't', 'with no writer open the watermark reaches now');
$node->stop;
done_testing();
