# The documentation cannot rot: every ```sql block of README.md and of docs/*.md runs, in the order
# below, against the quickstart's example database (scripts/example_data.sql) on a cluster
# configured as the docs say. All blocks share one database, so a block may use what an earlier
# one (in the same file, or in a file before it) created; the order is fixed here:
#   README.md (the tutorial), then docs/reference.md, docs/semantics.md, docs/operations.md,
#   docs/benchmarks.md, docs/limits.md, docs/scaling.md, docs/python.md, docs/development.md.
# A docs/*.md file missing from this list fails the test, so no page's SQL goes unrun.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $root = abs_path(dirname(__FILE__) . '/../..');
my @order = qw(README.md docs/reference.md docs/semantics.md docs/operations.md docs/benchmarks.md
  docs/limits.md docs/scaling.md docs/python.md docs/development.md);
my %listed = map { $_ => 1 } @order;
for my $f (sort map { s{^\Q$root\E/}{}r } glob("$root/docs/*.md"))
{
	ok($listed{$f}, "$f is in the order of 090_readme_sql.pl");
}

my @blocks;    # [file, sql]
for my $f (@order)
{
	my $text = slurp_file("$root/$f");
	while ($text =~ /^```sql[ \t]*\n(.*?)^```[ \t]*$/msg)
	{
		push @blocks, [ $f, $1 ];
	}
}
cmp_ok(scalar(@blocks), '>=', 2, 'the docs have SQL examples');

my $node = PostgreSQL::Test::Cluster->new('readme');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron, feature_store'
cron.database_name = 'quickstart'
feature_store.database = 'quickstart'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE quickstart');
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('quickstart'),
	'-f', "$root/scripts/example_data.sql"], 'example data loads');
$node->safe_psql('quickstart', 'CREATE EXTENSION pg_cron; CREATE EXTENSION feature_store;');

my %n;
for my $block (@blocks)
{
	my ($f, $sql) = @$block;
	$n{$f}++;
	my ($first) = $sql =~ /^\s*(.{0,60})/;
	my ($ret, $out, $err) = $node->psql('quickstart', $sql, on_error_stop => 1);
	is($ret, 0, "$f SQL block $n{$f} runs: $first") or diag("block:\n$sql\nerror:\n$err");
}

# The Prometheus exporter's queries run too, and return rows once views are materialized.
my $prom = slurp_file("$root/scripts/prometheus-queries.yaml");
my @prom = $prom =~ /^\s*query:\s*"(.*)"\s*$/mg;
cmp_ok(scalar(@prom), '>=', 3, 'prometheus-queries.yaml has queries');
for my $q (@prom)
{
	my ($ret, $out, $err) = $node->psql('quickstart', $q, on_error_stop => 1);
	is($ret, 0, 'prometheus query runs: ' . substr($q, 0, 50)) or diag($err);
	isnt($out, '', 'prometheus query returns rows: ' . substr($q, 0, 50));
}

$node->stop;
done_testing();
