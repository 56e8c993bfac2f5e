# The watermark guarantee with concurrent writers: a transaction that started before an
# incremental run and commits after it, with created time = its start (DEFAULT now()), must not
# be lost. The run's window stops before the oldest open transaction's start, so the row is
# picked up by the next run; a run with no writer open reaches (almost) now. Then a REPEATABLE
# READ run racing a committed one fails to serialize (40001).
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

# REPEATABLE READ: a run whose snapshot predates another run's commit meets online rows it
# cannot see. As PostgreSQL's own INSERT ... ON CONFLICT does there, it fails with
# serialization_failure (40001: retry the transaction), not with a unique violation, and the
# committed rows stay.
$node->safe_psql('postgres', q{
CREATE TABLE h2 (uid int, ev timestamptz, cr timestamptz DEFAULT now(), x float8);
INSERT INTO h2 (uid, ev, x) SELECT i, '2026-01-01', i FROM generate_series(1, 200) i;
SELECT fs_register_view('hv2', 'h2', 'u', 'ev', 'cr');
});
($in, $out, $err) = ('', '', '');
$h = IPC::Run::start(['psql', '-X', '-A', '-t', '-d', $node->connstr('postgres')],
					 '<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
$in .= "BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT 'snap ' || count(*) FROM h2;\n";
$h->pump until $out =~ /snap 200/;
is($node->safe_psql('postgres', q{SELECT fs_materialize('hv2', '-infinity', 'infinity')}), '200',
   'another session materializes the view and commits');
$in .= "SELECT fs_materialize('hv2', '-infinity', 'infinity');\nROLLBACK;\nSELECT 'done';\n";
$h->pump until $out =~ /done/;
$in .= "\\q\n";
$h->finish;
like($err, qr/ERROR:  could not serialize access/, 'a REPEATABLE READ run that cannot see those rows fails to serialize')
  or diag($err);
unlike($err, qr/duplicate key/, 'not with a unique violation');
$tab = $node->safe_psql('postgres', q{SELECT format('feature_store.online_%s', view_id) FROM fs_views WHERE name = 'hv2'});
is($node->safe_psql('postgres', qq{SELECT count(*) || ' ' || sum(x) FROM $tab}), '200 20100', 'the committed online rows stay');
$node->stop;
done_testing();
