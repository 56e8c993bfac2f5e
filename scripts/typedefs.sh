#!/usr/bin/env bash
# Prints the typedef names declared in src/*.c and src/*.h, sorted, one a line: the project's
# part of pgindent's typedefs list (pgindent formats a declaration of a type it does not know as
# an expression). Regenerate after adding or renaming a type:
#   scripts/typedefs.sh > typedefs.list
# and indent with PostgreSQL's own list added (pgindent's --typedefs takes one file):
#   cat "$PG_SOURCE/src/tools/pgindent/typedefs.list" typedefs.list > /tmp/fs_typedefs.list
#   pgindent --typedefs=/tmp/fs_typedefs.list src/*.c src/*.h
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
/usr/bin/perl -e '
  my %names;
  for my $f (@ARGV) {
    local $/;
    open my $fh, "<", $f or die "$f: $!";
    my $s = <$fh>;
    $s =~ s{/\*.*?\*/}{ }gs;           # comments
    $s =~ s{//[^\n]*}{ }g;
    $s =~ s{^\s*#[^\n]*}{ }gm;          # preprocessor lines
    while ($s =~ /\btypedef\b/g) {
      my $start = pos($s);
      my ($depth, $i) = (0, $start);
      for (; $i < length $s; $i++) {
        my $c = substr($s, $i, 1);
        $depth++ if $c eq "{";
        $depth-- if $c eq "}";
        last if $c eq ";" && $depth == 0;
      }
      my $decl = substr($s, $start, $i - $start);
      pos($s) = $i;
      $decl =~ s/\{.*\}/ /s;                 # the body of a struct, union or enum
      if ($decl =~ /\(\s*\*\s*(\w+)\s*\)/) { $names{$1} = 1 }    # pointer to function
      elsif ($decl =~ /(\w+)\s*(\[[^\]]*\]\s*)*$/) { $names{$1} = 1 }
    }
  }
  print "$_\n" for sort keys %names;
' src/*.c src/*.h
