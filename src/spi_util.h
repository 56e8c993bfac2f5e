/*
 * spi_util.h — small wrappers around SPI for the registry's fixed, parameterized queries.
 * Values never go into SQL text: every query takes $n parameters.
 */
#ifndef FS_SPI_UTIL_H
#define FS_SPI_UTIL_H

#include "postgres.h"
#include "executor/spi.h"

/* Runs a parameterized query (args/types may be NULL when nargs = 0); errors if SPI fails. */
extern uint64 fs_spi_exec(const char *sql, int nargs, const Oid *types,
						  const Datum *values, const bool *isnull, bool read_only);

/* Column accessors on SPI_tuptable row `row`, column `col` (1-based); results are allocated
 * in `cxt` so they outlive SPI_finish. */
extern char *fs_spi_text(uint64 row, int col, MemoryContext cxt);
extern Datum fs_spi_datum(uint64 row, int col, bool *isnull);
extern int32 fs_spi_int32(uint64 row, int col, int32 if_null);
extern bool fs_spi_bool(uint64 row, int col, bool if_null);

/*
 * Runs fn(arg) in a subtransaction, as PL/pgSQL runs a block with an EXCEPTION clause: NULL on
 * success; on an error the subtransaction is rolled back and the error is returned (copied into
 * the caller's memory context and flushed). The caller's memory context and resource owner are
 * restored either way.
 */
extern ErrorData *fs_subxact_try(void (*fn) (void *arg), void *arg);

#endif
