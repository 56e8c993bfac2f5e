# The upgrade path: a database created at the released 0.1 (frozen install script), with a
# populated registry, online store, stream triggers, watermark, quarantine, run log, training set
# and a pg_cron schedule, is brought to the current version by ALTER EXTENSION ... UPDATE.
# Afterwards (1) every registry row is still there, (2) every online answer and the training set
# are unchanged, (3) streaming, incremental runs and schedules keep working, and (4) the
# extension's catalog (every member object's definition, privileges, config-dump tables) is
# identical to a fresh install of the current version: the upgrade script leaves nothing out.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $root = abs_path(dirname(__FILE__) . '/../..');
my ($current) = slurp_file("$root/feature_store.control") =~ /^default_version\s*=\s*'([^']+)'/m;
my @released = map { m{feature_store--([0-9.]+)\.sql$} ? $1 : () } glob("$root/feature_store--*.sql");
@released = grep { $_ ne $current } @released;
ok(scalar(@released) >= 1, "released versions to upgrade from: @released (current $current)");

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron, feature_store'
cron.database_name = 'up'
feature_store.database = 'up'
});
$node->start;

# Every member object of the extension, described by its definition rather than its oid.
my $catalog = q{
WITH m AS (
  SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
  WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'feature_store' AND d.deptype = 'e'),
rel AS (SELECT c.* FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid)
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'member ' || pg_describe_object(classid, objid, 0) AS line FROM m
  UNION ALL
  SELECT 'comment ' || pg_describe_object(m.classid, m.objid, ds.objsubid) || ': ' || ds.description
  FROM m JOIN pg_description ds ON ds.classoid = m.classid AND ds.objoid = m.objid
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' owner-is-super=' || r.rolsuper || ' acl=' || coalesce(p.proacl::text, '-')
         || E'\n' || CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END
  FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid JOIN pg_roles r ON r.oid = p.proowner
  UNION ALL
  SELECT format('relation %s kind=%s persistence=%s acl=%s options=%s rls=%s', c.oid::regclass, c.relkind,
                c.relpersistence, c.relacl, c.reloptions, c.relrowsecurity)
  FROM rel c
  UNION ALL
  SELECT 'view ' || c.oid::regclass || E'\n' || pg_get_viewdef(c.oid) FROM rel c WHERE c.relkind IN ('v', 'm')
  UNION ALL
  SELECT format('column %s #%s %s %s notnull=%s default=%s identity=%s generated=%s acl=%s', c.oid::regclass,
                row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                a.attidentity, a.attgenerated, a.attacl)
  FROM rel c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
  UNION ALL
  SELECT 'constraint ' || co.conrelid::regclass || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
  FROM rel c JOIN pg_constraint co ON co.conrelid = c.oid
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM rel c JOIN pg_index i ON i.indrelid = c.oid
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM rel c JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
  UNION ALL
  SELECT 'policy ' || c.oid::regclass || ' ' || po.polname || ' ' || po.polcmd::text || ' ' || coalesce(pg_get_expr(po.polqual, po.polrelid), '')
  FROM rel c JOIN pg_policy po ON po.polrelid = c.oid
  UNION ALL
  SELECT format('sequence %s %s start=%s inc=%s min=%s max=%s cycle=%s', s.seqrelid::regclass, format_type(s.seqtypid, NULL),
                s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
  FROM rel c JOIN pg_sequence s ON s.seqrelid = c.oid
  UNION ALL
  SELECT format('type %s type=%s len=%s byval=%s align=%s storage=%s in=%s out=%s recv=%s send=%s cat=%s',
                format_type(t.oid, NULL), t.typtype, t.typlen, t.typbyval, t.typalign, t.typstorage,
                t.typinput, t.typoutput, t.typreceive, t.typsend, t.typcategory)
  FROM m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
  UNION ALL
  SELECT format('operator %s(%s,%s) code=%s com=%s neg=%s rest=%s join=%s hash=%s merge=%s', o.oprname,
                format_type(o.oprleft, NULL), format_type(o.oprright, NULL), o.oprcode, o.oprcom::regoperator,
                o.oprnegate::regoperator, o.oprrest, o.oprjoin, o.oprcanhash, o.oprcanmerge)
  FROM m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
  UNION ALL
  SELECT 'opfamily member ' || pg_describe_object('pg_amop'::regclass, ao.oid, 0)
  FROM m JOIN pg_amop ao ON m.classid = 'pg_opfamily'::regclass AND ao.amopfamily = m.objid
  UNION ALL
  SELECT 'opfamily member ' || pg_describe_object('pg_amproc'::regclass, ap.oid, 0)
  FROM m JOIN pg_amproc ap ON m.classid = 'pg_opfamily'::regclass AND ap.amprocfamily = m.objid
  UNION ALL
  SELECT format('cast %s -> %s func=%s context=%s', format_type(ca.castsource, NULL), format_type(ca.casttarget, NULL),
                ca.castfunc::regprocedure, ca.castcontext)
  FROM m JOIN pg_cast ca ON m.classid = 'pg_cast'::regclass AND ca.oid = m.objid
  UNION ALL
  SELECT format('event trigger %s on %s tags=%s func=%s enabled=%s', et.evtname, et.evtevent, et.evttags,
                et.evtfoid::regprocedure, et.evtenabled)
  FROM m JOIN pg_event_trigger et ON m.classid = 'pg_event_trigger'::regclass AND et.oid = m.objid
  UNION ALL
  SELECT 'schema ' || n.nspname || ' acl=' || coalesce(n.nspacl::text, '-')
  FROM m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
  UNION ALL
  SELECT 'config dump ' || cfg.rel::regclass || ' where ' || coalesce(cfg.cond, '')
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS cfg(rel, cond) WHERE e.extname = 'feature_store'
  UNION ALL
  SELECT 'extension schema=' || extnamespace::regnamespace || ' relocatable=' || extrelocatable
  FROM pg_extension WHERE extname = 'feature_store'
) lines
};

# Lines present in one catalog but not the other, so a failure names what the upgrade missed.
sub catalog_diff
{
	my ($a, $b) = @_;
	my %a = map { $_ => 1 } split /\n(?=[a-z])/, $a;
	my %b = map { $_ => 1 } split /\n(?=[a-z])/, $b;
	my @only_a = grep { !$b{$_} } sort keys %a;
	my @only_b = grep { !$a{$_} } sort keys %b;
	return join("\n", (map { "only after upgrade: $_" } @only_a), (map { "only in fresh install: $_" } @only_b));
}

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION feature_store');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'feature_store'}),
   $current, "a fresh install is at $current");
my $fresh_catalog = $node->safe_psql('fresh', $catalog);
like($fresh_catalog, qr/^function .*fs_online/m, 'the catalog fingerprint sees the functions');

# Registry rows, as jsonb, kept outside the extension so that they survive it.
my $registry_rows = join(' UNION ALL ',
	map { "SELECT '$_' AS tbl, to_jsonb(t) AS j FROM feature_store.$_ t" }
	qw(entity feature_view view_feature feature_service service_feature training_set watermark
	   schedule quarantine materialization_run));
my $snapshot = qq{
CREATE TABLE snap.registry AS
SELECT tbl, j FROM ($registry_rows) s;
CREATE TABLE snap.online AS
SELECT e AS entity, fs_online(e::fs_entity) AS features
FROM unnest(ARRAY['driver:1001', 'driver:1002', 'driver:1003', 'driver:1004', 'driver:1005', 'driver:9999',
                  'customer:c1', 'customer:c2', 'customer:c3']) e;
CREATE TABLE snap.vectors AS
SELECT e AS entity, fs_online_vector(e::fs_entity, 'driver_ranker') AS v
FROM unnest(ARRAY['driver:1001', 'driver:1002', 'driver:1003', 'driver:1004', 'driver:1005']) e;
};
# Every registry row of before still exists, field for field (new columns may be added).
my $registry_kept = qq{
SELECT count(*) FILTER (WHERE NOT EXISTS (
         SELECT 1 FROM ($registry_rows) now
         WHERE now.tbl = s.tbl AND now.j @> s.j))
       || '/' || count(*)
FROM snap.registry s
};

for my $from (@released)
{
	my $db = "up";
	# the cache worker and pg_cron stay connected to the previous round's database
	$node->safe_psql('postgres', "DROP DATABASE IF EXISTS $db WITH (FORCE)");
	$node->safe_psql('postgres', "DROP ROLE IF EXISTS upgrade_reader");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db),
		'-f', "$root/scripts/example_data.sql"], 'example data loads');
	$node->safe_psql($db, "CREATE EXTENSION pg_cron; CREATE EXTENSION feature_store VERSION '$from'");
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'feature_store'}),
	   $from, "installed at released version $from");

	# A working deployment of the released version, using every kind of registry state.
	$node->safe_psql($db, q{
CREATE ROLE upgrade_reader;
GRANT SELECT ON driver_hourly_stats TO upgrade_reader;
SELECT fs_register_entity('driver', 'driver_id', description => 'A taxi driver');
SELECT fs_register_entity('customer', 'customer_id');
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver', created_time => 'created',
                        ttl => '2 hours', tags => '{"team": "rides"}');
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver', created_time => 'created',
                        ttl => '1 day', checks => '{"conv_rate": {"min": 0, "max": 1}}');
SELECT fs_register_view('customer_profile', 'customer_daily_profile', entity => 'customer', ttl => '2 days');
SELECT fs_register_service('ride_model', ARRAY['driver_stats:conv_rate', 'driver_stats:acc_rate', 'customer_profile:*']);
SELECT fs_register_service('driver_ranker', ARRAY['driver_stats:conv_rate', 'driver_stats@1:avg_daily_trips']);
SELECT fs_create_training_set('ride_training', 'ride_requests', ARRAY['ride_model']);
SELECT fs_materialize('driver_stats', now() - interval '3 days', now());
SELECT fs_materialize_incremental('customer_profile');
SELECT fs_schedule_materialization('customer_profile', '*/5 * * * *');
SELECT fs_set_online_mode('driver_stats', 'stream');
INSERT INTO driver_hourly_stats VALUES (1003, date_trunc('hour', now()) + interval '1 minute', now(), 0.5, 0.25, 7);
INSERT INTO driver_hourly_stats VALUES (1004, date_trunc('hour', now()) + interval '1 minute', now(), -0.5, 0.25, 8);

CREATE SCHEMA snap;
});
	$node->safe_psql($db, $snapshot);
	is($node->safe_psql($db, q{SELECT count(*) FROM feature_store.quarantine}), '1',
	   'the failing streamed row went to quarantine before the upgrade');
	is($node->safe_psql($db, q{SELECT features->'driver_stats'->>'conv_rate' FROM snap.online WHERE entity = 'driver:1003'}),
	   '0.5', 'the streamed row is served before the upgrade');
	# The current library on a database still at the old version: stream mode falls back to
	# whole-view invalidation (the per-key trigger function does not exist there yet).
	my $key_triggers = q{SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'fs_online_keys%' AND tgrelid =
	     (SELECT format('feature_store.%I', 'online_' || view_id)::regclass FROM fs_views WHERE name = 'driver_stats' AND is_latest)};
	if ($from eq '0.1')
	{
		is($node->safe_psql($db, $key_triggers), '0', 'before the upgrade from 0.1 a streamed view has no per-key triggers');
	}
	else
	{
		cmp_ok($node->safe_psql($db, $key_triggers), '>', 0, "at $from a streamed view has its per-key triggers");
	}

	$node->safe_psql($db, 'ALTER EXTENSION feature_store UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'feature_store'}),
	   $current, "ALTER EXTENSION UPDATE goes from $from to $current");

	# (1) and (2): nothing was lost or changed.
	is($node->safe_psql($db, $registry_kept), '0/' . $node->safe_psql($db, 'SELECT count(*) FROM snap.registry'),
	   'every registry row survives the upgrade unchanged');
	is($node->safe_psql($db, q{
		SELECT count(*) FROM snap.online s WHERE fs_online(s.entity::fs_entity) IS DISTINCT FROM s.features}),
	   '0', 'fs_online answers are unchanged after the upgrade');
	is($node->safe_psql($db, q{
		SELECT count(*) FROM snap.vectors s WHERE fs_online_vector(s.entity::fs_entity, 'driver_ranker') IS DISTINCT FROM s.v}),
	   '0', 'fs_online_vector answers are unchanged after the upgrade');
	$node->safe_psql($db, q{SELECT fs_create_training_set('ride_training_again', 'ride_requests', ARRAY['ride_model'])});
	is($node->safe_psql($db, q{
		SELECT count(*) FROM ((TABLE ride_training EXCEPT ALL TABLE ride_training_again)
		                      UNION ALL (TABLE ride_training_again EXCEPT ALL TABLE ride_training)) d}),
	   '0', 'the training set made before the upgrade is reproduced exactly after it');

	# (3): the deployment keeps working on the new version.
	$node->safe_psql($db, q{
INSERT INTO driver_hourly_stats VALUES (1005, date_trunc('hour', now()) + interval '2 minutes', now(), 0.125, 0.5, 9);
INSERT INTO customer_daily_profile VALUES ('c3', now(), 42.42, 99);
SELECT fs_materialize_incremental('customer_profile');
});
	is($node->safe_psql($db, q{SELECT fs_online('driver:1005', 'driver_stats')->'driver_stats'->>'conv_rate'}),
	   '0.125', 'streaming into the online store still works after the upgrade');
	is($node->safe_psql($db, q{SELECT fs_online('customer:c3', 'customer_profile')->'customer_profile'->>'lifetime_trips'}),
	   '99', 'incremental materialization still works after the upgrade');
	is($node->safe_psql($db, q{SELECT string_agg(jobname || ' ' || schedule, ',') FROM cron.job}),
	   'feature_store:customer_profile */5 * * * *', 'the pg_cron schedule is kept');
	is($node->safe_psql($db, q{SELECT count(*) FROM fs_stat_views WHERE view = 'driver_stats' AND online_mode = 'stream'}),
	   '1', 'the stream mode is kept');
	$node->safe_psql($db, q{SELECT fs_set_online_mode('driver_stats', 'stream')});
	is($node->safe_psql($db, $key_triggers), '3', 'setting stream mode again after the upgrade installs the per-key triggers');
	$node->safe_psql($db, q{INSERT INTO driver_hourly_stats VALUES (1001, date_trunc('hour', now()) + interval '3 minutes', now(), 0.375, 0.5, 9)});
	is($node->safe_psql($db, q{SELECT fs_online('driver:1001', 'driver_stats')->'driver_stats'->>'conv_rate'}),
	   '0.375', 'and streaming goes on');
	my ($ret, $out, $err) = $node->psql($db, q{SET ROLE upgrade_reader; DELETE FROM feature_store.feature_view});
	like($err, qr/permission denied/, 'the registry stays write-protected after the upgrade');

	# (4): the upgraded catalog is exactly a fresh install's.
	my $up_catalog = $node->safe_psql($db, $catalog);
	my $diff = catalog_diff($up_catalog, $fresh_catalog);
	is($diff, '', "catalog after $from -> $current equals a fresh $current install") or diag($diff);

	# The upgraded database can still be dropped and dumped cleanly.
	$node->command_ok(['pg_dump', '-Fc', '-f', $node->basedir . "/up.dump", '-d', $node->connstr($db)],
		'pg_dump of the upgraded database');
	$node->safe_psql($db, 'BEGIN; DROP EXTENSION feature_store CASCADE; ROLLBACK');
	is($node->safe_psql($db, q{SELECT count(*) FROM cron.job}), '1', 'a rolled back DROP EXTENSION keeps the pg_cron job');
	$node->safe_psql($db, 'DROP EXTENSION feature_store CASCADE');
	is($node->safe_psql($db, q{SELECT count(*) FROM cron.job}), '0', 'DROP EXTENSION removes its pg_cron jobs');
	is($node->safe_psql($db, q{SELECT count(*) FROM pg_namespace WHERE nspname = 'feature_store'}), '0',
	   'DROP EXTENSION after the upgrade removes everything');
}

$node->stop;
done_testing();
