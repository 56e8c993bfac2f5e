/*
 * spi_util.c — see spi_util.h. Kept apart so that every module builds its registry queries the
 * same way: parameterized, never by pasting values into SQL.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "utils/resowner.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "spi_util.h"

uint64
fs_spi_exec(const char *sql, int nargs, const Oid *types, const Datum *values,
			const bool *isnull, bool read_only)
{
	char		nulls[16];
	int			rc;
	int			save_nestlevel;

	Assert(nargs <= (int) sizeof(nulls));
	for (int i = 0; i < nargs; i++)
		nulls[i] = (isnull && isnull[i]) ? 'n' : ' ';
	/*
	 * The queries are the extension's own, every name in them qualified: run them with
	 * search_path pinned, so that functions or operators a caller put in a schema before
	 * pg_catalog (an "=" on text, say) are never picked up (sql/privileges_matrix.sql).
	 * On error the transaction's abort restores the setting.
	 */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	rc = SPI_execute_with_args(sql, nargs, (Oid *) types, (Datum *) values,
							   nargs > 0 ? nulls : NULL, read_only, 0);
	AtEOXact_GUC(true, save_nestlevel);
	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed (%d) for: %s", rc, sql);
	return SPI_processed;
}

char *
fs_spi_text(uint64 row, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

Datum
fs_spi_datum(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

int32
fs_spi_int32(uint64 row, int col, int32 if_null)
{
	bool		isnull;
	Datum		d = fs_spi_datum(row, col, &isnull);

	return isnull ? if_null : DatumGetInt32(d);
}

bool
fs_spi_bool(uint64 row, int col, bool if_null)
{
	bool		isnull;
	Datum		d = fs_spi_datum(row, col, &isnull);

	return isnull ? if_null : DatumGetBool(d);
}

ErrorData *
fs_subxact_try(void (*fn) (void *arg), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return edata;
}
