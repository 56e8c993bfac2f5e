# The SQL reference (docs/reference.md) cannot rot: it is compared with the catalog of a fresh
# install and with the C sources.
#  1. Every function the extension installs in its schema has a signature line
#     `name(arg type [DEFAULT ...], ...) → result [-- attributes]` in the reference with the same
#     argument names (the type alone for an unnamed argument), in order, the same types, VARIADIC
#     and DEFAULT exactly where the catalog has them, the same result (type, SETOF, output
#     columns) and, as attributes, exactly what differs from VOLATILE, not STRICT, PARALLEL UNSAFE.
#  2. Every view has a heading #### `view` followed by a table of its columns: the same names and
#     types, in order. Every type has a heading, every operator is named.
#  3. Every SQLSTATE the code can raise (ERRCODE_* in src/*.c, ERRCODE = '...' in src/*.sql,
#     aclcheck_error) appears as `code condition_name`, and every `code condition_name` written
#     in the reference is a real pair of the server's errcodes.txt.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $root = abs_path(dirname(__FILE__) . '/../..');
my $reference = slurp_file("$root/docs/reference.md");
my ($ref) = $reference =~ /\A# SQL reference\n(.*)\z/s;
ok(defined $ref && length($ref) > 1000, 'docs/reference.md is the SQL reference');
$ref //= '';

my $node = PostgreSQL::Test::Cluster->new('reference');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'feature_store'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION feature_store');

# Canonical type names, as the server spells them (float8[] -> double precision[]).
my %canon;
sub canon_type
{
	my ($t) = @_;
	$t =~ s/^\s+|\s+$//g;
	$t = 'timestamp with time zone' if $t eq 'timestamptz';
	return $canon{$t} if exists $canon{$t};
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT format_type(" . "'" . ($t =~ s/'/''/gr) . "'::regtype, NULL)");
	$canon{$t} = $ret == 0 ? $out : "?unknown type $t";
	return $canon{$t};
}

# Member objects of the extension in its schema.
my $members = q{
  SELECT d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
  WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'feature_store' AND d.deptype = 'e'
    AND d.classid = '%s'::regclass};
my $extnsp = q{(SELECT extnamespace FROM pg_extension WHERE extname = 'feature_store')};

# Functions: one line each: regprocedure | name | retset | result type | args (name:mode:type;...) | ndefaults
# | attributes other than the defaults VOLATILE, not STRICT, PARALLEL UNSAFE
my $fn_rows = $node->safe_psql('postgres', sprintf(q{
  SELECT p.oid::regprocedure, p.proname, p.proretset, format_type(p.prorettype, NULL),
         coalesce((SELECT string_agg(coalesce(a.n, '') || ':' || coalesce(a.m::text, 'i') || ':' || format_type(a.t, NULL), ';' ORDER BY a.o)
                   FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargmodes, p.proargnames)
                        WITH ORDINALITY AS a(t, m, n, o)), ''),
         p.pronargdefaults,
         concat_ws(' ', CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' END,
                   CASE WHEN p.proisstrict THEN 'STRICT' END,
                   CASE p.proparallel WHEN 's' THEN 'PARALLEL SAFE' WHEN 'r' THEN 'PARALLEL RESTRICTED' END)
  FROM pg_proc p WHERE p.oid IN (%s) AND p.pronamespace = %s ORDER BY 1::text},
	sprintf($members, 'pg_proc'), $extnsp));
my @functions = map { [ split /\|/, $_, -1 ] } grep { $_ ne '' } split /\n/, $fn_rows;
cmp_ok(scalar(@functions), '>=', 20, scalar(@functions) . ' functions in the extension schema');

# Documented signatures: fs_name(args) → result [-- attributes], where the attributes name what
# differs from VOLATILE, not STRICT, PARALLEL UNSAFE (other words there, such as ROWS 100, are notes).
my %doc;
while ($ref =~ /\b(fs_\w+)\(([^()]*)\)\s*→\s*([^\n`]*)/g)
{
	my ($name, $args, $result) = ($1, $2, $3);
	my $attrs = $result =~ s/\s*--(.*)$// ? $1 : '';
	$result =~ s/\s+$//;
	my @a = (($attrs =~ /\b(IMMUTABLE|STABLE)\b/g), ($attrs =~ /\b(STRICT)\b/g), ($attrs =~ /\b(PARALLEL (?:SAFE|RESTRICTED))\b/g));
	push @{ $doc{$name} }, { args => $args, result => $result, attrs => join(' ', @a) };
}

# Parses "name type [DEFAULT x]" items; an item without a name is just a type.
sub parse_doc_args
{
	my ($s, $named) = @_;
	my @out;
	for my $item (grep { /\S/ } split /,/, $s)
	{
		$item =~ s/^\s+|\s+$//g;
		my $variadic = $item =~ s/^VARIADIC\s+//;
		my $default = $item =~ s/\s+DEFAULT\s+.*$//;
		my ($n, $t) = $named ? ($item =~ /^(\w+)\s+(.+)$/) : ('', $item);
		push @out, { name => $n // '?', type => canon_type($t // '?'), variadic => $variadic ? 1 : 0, default => $default ? 1 : 0 };
	}
	return @out;
}

# The result: a type, SETOF type, or [SETOF|TABLE|record] (col type, ...).
sub parse_doc_result
{
	my ($r) = @_;
	my $setof = $r =~ s/^(SETOF|TABLE)\s*// ? 1 : 0;
	if ($r =~ /^(?:record\s*)?\((.*)\)$/)
	{
		return { setof => $setof, cols => [ map { "$_->{name} $_->{type}" } parse_doc_args($1, 1) ] };
	}
	return { setof => $setof, type => canon_type($r) };
}

for my $f (@functions)
{
	my ($sig, $name, $retset, $rettype, $argstr, $ndefaults, $attrs) = @$f;
	my @args = map { my ($n, $m, $t) = split /:/, $_, 3; { name => $n, mode => $m, type => $t } } grep { $_ ne '' } split /;/, $argstr;
	my @in = grep { $_->{mode} =~ /^[ibv]$/ } @args;
	my @outcols = map { "$_->{name} $_->{type}" } grep { $_->{mode} =~ /^[obt]$/ } @args;
	for my $i (0 .. $#in)
	{
		$in[$i]{default} = $i >= @in - $ndefaults ? 1 : 0;
		$in[$i]{variadic} = $in[$i]{mode} eq 'v' ? 1 : 0;
	}
	my $want_in = join ', ', map { ($_->{variadic} ? 'VARIADIC ' : '') . ($_->{name} ne '' ? "$_->{name} " : '') . $_->{type} . ($_->{default} ? ' DEFAULT' : '') } @in;
	my $want_res = (@outcols ? ($retset eq 't' ? 'SETOF ' : '') . '(' . join(', ', @outcols) . ')' : ($retset eq 't' ? 'SETOF ' : '') . $rettype)
	  . ($attrs ne '' ? "  -- $attrs" : '');

	my @seen;
	my $found = 0;
	for my $d (@{ $doc{$name} // [] })
	{
		my @da = parse_doc_args($d->{args}, (@in && $in[0]{name} ne '') ? 1 : 0);
		my $got_in = join ', ', map { ($_->{variadic} ? 'VARIADIC ' : '') . ($_->{name} ne '' ? "$_->{name} " : '') . $_->{type} . ($_->{default} ? ' DEFAULT' : '') } @da;
		my $r = parse_doc_result($d->{result});
		my $got_res = ($r->{cols} ? ($r->{setof} ? 'SETOF ' : '') . '(' . join(', ', @{ $r->{cols} }) . ')' : ($r->{setof} ? 'SETOF ' : '') . $r->{type})
		  . ($d->{attrs} ne '' ? "  -- $d->{attrs}" : '');
		push @seen, "$name($got_in) → $got_res";
		$found = 1 if $got_in eq $want_in && $got_res eq $want_res;
	}
	ok($found, "documented: $sig") or diag("catalog:    $name($want_in) → $want_res\n"
		  . (@seen ? join('', map { "documented: $_\n" } @seen) : "documented: nothing named $name\n"));
}

# Views: a heading, then a table of every column with its type, in order.
my $view_rows = $node->safe_psql('postgres', sprintf(q{
  SELECT c.relname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE c.oid IN (%s) AND c.relkind = 'v' AND c.relnamespace = %s GROUP BY 1 ORDER BY 1},
	sprintf($members, 'pg_class'), $extnsp));
my @views = map { [ split /\|/, $_, 2 ] } grep { $_ ne '' } split /\n/, $view_rows;
cmp_ok(scalar(@views), '>=', 10, scalar(@views) . ' views in the extension schema');
for my $v (@views)
{
	my ($name, $cols) = @$v;
	my ($body) = $ref =~ /^#### `\Q$name\E`[ \t]*\n(.*?)(?=^#|\z)/ms;
	my @doc_cols;
	for my $line (split /\n/, $body // '')
	{
		push @doc_cols, "$1 " . canon_type($2) if $line =~ /^\|\s*`(\w+)`\s*\|\s*([^|]+?)\s*\|/;
	}
	is(join(', ', @doc_cols), $cols, "view $name: its columns and types are documented under #### `$name`");
}

# Types and operators.
for my $t (split /\n/, $node->safe_psql('postgres', sprintf(q{
  SELECT t.typname FROM pg_type t WHERE t.oid IN (%s) AND t.typnamespace = %s ORDER BY 1},
	sprintf($members, 'pg_type'), $extnsp)))
{
	ok($ref =~ /^#### `\Q$t\E`/m, "type $t has a heading");
}
for my $o (split /\n/, $node->safe_psql('postgres', sprintf(q{
  SELECT DISTINCT o.oprname FROM pg_operator o WHERE o.oid IN (%s) AND o.oprnamespace = %s ORDER BY 1},
	sprintf($members, 'pg_operator'), $extnsp)))
{
	ok($ref =~ /`\Q$o\E`/, "operator $o is named");
}
$node->stop;

# SQLSTATEs: errcodes.txt of the server we test against maps macros and names to codes.
my $errcodes = slurp_file($node->config_data('--sharedir') . '/errcodes.txt');
my (%by_macro, %name_of_code, %code_of_name, %valid);
for (split /\n/, $errcodes)
{
	next unless /^([0-9A-Z]{5})\s+[EWS]\s+(ERRCODE_\w+)(?:\s+(\w+))?/;
	$by_macro{$2} = $1;
	if (defined $3)
	{
		$name_of_code{$1} //= $3;
		$code_of_name{$3} //= $1;
		$valid{"$1 $3"} = 1;
	}
}
cmp_ok(scalar(keys %code_of_name), '>', 200, 'errcodes.txt read');

my %raised;
for my $file (grep { !/_test\.c$/ } glob("$root/src/*.c"))    # test drivers: not in the extension
{
	my $src = slurp_file($file);
	$src =~ s{/\*.*?\*/}{}gs;
	$raised{ $by_macro{$_} // "?$_" } = 1 for $src =~ /\b(ERRCODE_\w+)/g;
	$raised{42501} = 1 if $src =~ /\baclcheck_error\(/;
}
for my $file (glob("$root/src/*.sql"))
{
	$raised{ $code_of_name{$_} // "?$_" } = 1 for slurp_file($file) =~ /ERRCODE\s*=\s*'(\w+)'/g;
}
cmp_ok(scalar(keys %raised), '>=', 15, scalar(keys %raised) . ' SQLSTATEs raised by src/');
for my $code (sort keys %raised)
{
	my $cond = $name_of_code{$code} // '?';
	ok($ref =~ /`\Q$code $cond\E`/, "SQLSTATE $code $cond (raised in src/) is in the reference");
}
my %written;
$written{"$1 $2"} = 1 while $ref =~ /`([0-9A-Z]{5}) ([a-z_]+)`/g;
for (sort keys %written)
{
	ok($valid{$_}, "`$_` in the reference is a real SQLSTATE and condition name");
}

done_testing();
