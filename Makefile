EXTENSION = feature_store
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = feature_store
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script of the current version is built from one SQL file per concern, in this order
# (each beside the C source of the same concern). Released versions' install scripts are frozen in
# the repository (feature_store--0.1.sql) and reach the current version through hand-written
# upgrade scripts (feature_store--0.1--0.2.sql); test/t/070_upgrade.pl proves both paths agree.
SQL_PARTS = src/schema.sql src/registry.sql
SQL_PARTS += src/online.sql
SQL_PARTS += src/checks.sql src/runlog.sql src/schedule.sql
SQL_PARTS += src/pit_join.sql
SQL_PARTS += src/materialize.sql src/backfill.sql
SQL_PARTS += src/skew.sql src/transform.sql
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard $(EXTENSION)--*.sql))

# pg_regress runs on a temp instance with the extension (and pg_cron) preloaded.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=tmp_check_regress
NO_INSTALLCHECK_DEFAULT = 0

# Isolation specs (pg_isolation_regress) pin the interleavings of the cache protocol's races; their
# temp instance is a second one, configured for them (test/isolation.conf).
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --temp-config=$(srcdir)/test/isolation.conf --temp-instance=tmp_check_iso

TAP_TESTS = 1
PROVE_TESTS = $(or $(TAP),test/t/*.pl)
PROVE_FLAGS = -I $(srcdir)/test/lib

PG_CPPFLAGS = -I$(srcdir)/src
EXTRA_CLEAN = tmp_check_regress tmp_check_iso output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object depends on every header of src/, so that a
# changed struct never leaves an object compiled against its old layout.
$(OBJS): $(wildcard src/*.h)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS)
	{ printf '%s\n' '-- Generated from $(SQL_PARTS); edit those files, not this one.' \
	    '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; cat $^; } > $@
