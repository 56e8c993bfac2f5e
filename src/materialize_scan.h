/*
 * materialize_scan.h — the C write path of batch and incremental materialization: one pass over
 * the window's source rows keeping each entity's winner in a hash table, merged with the online
 * table and written in one statement (see materialize_scan.c for the design and its locks).
 */
#ifndef FS_MATERIALIZE_SCAN_H
#define FS_MATERIALIZE_SCAN_H

#include "postgres.h"
#include "datatype/timestamp.h"

#include "registry.h"

/* feature_store.materialize_method: how fs_materialize and incremental runs write. */
typedef enum FsMatMethod
{
	FS_MAT_AUTO,				/* C path, merging or probing by size; SQL for small windows
								 * (estimated) or when memory runs out */
	FS_MAT_SQL,					/* the single INSERT ... SELECT DISTINCT ON ... ON CONFLICT */
	FS_MAT_MERGE,				/* C path, always reading the online table to drop stale winners */
	FS_MAT_PROBE				/* C path, always upserting every winner through the key index */
} FsMatMethod;

/*
 * The window of a run in C terms (the same conditions as the `where` text): rows whose window
 * column (created time with on_created, else event time) is after start (> or >=) and at or
 * before end, whose event time is at or before end when as_of_end, and at or after ttl_bound
 * when has_ttl. An open side (DT_NOBEGIN / DT_NOEND) has no condition, so a NULL window
 * column then passes it. Lets a full run read a plain table without the executor.
 */
typedef struct FsMatWindow
{
	bool		on_created;
	TimestampTz start;
	bool		start_exclusive;
	TimestampTz end;
	bool		as_of_end;
	bool		has_ttl;
	TimestampTz ttl_bound;
	int			nchunks;		/* > 0: only keys of chunk `chunk` (fs_key_chunk), as in `where` */
	int			chunk;
} FsMatWindow;

/* Chunk of a key hash among nchunks equal ranges of the 32-bit hash space. */
static inline int
fs_key_chunk_of(uint32 h, int nchunks)
{
	return (int) (((uint64) h * (uint64) nchunks) >> 32);
}

/*
 * Writes, for every entity among the source rows (alias s) satisfying `where` ($1..$nargs), its
 * latest row passing the view's checks, where it is strictly newer than the row online. Returns
 * the rows inserted or updated, or -1 when the SQL statement is the better writer (auto and a
 * window estimated under MAT_MIN_ROWS rows) or the winners did not fit in maintenance_work_mem
 * (the caller then runs the SQL statement; nothing was written). Caller: no SPI connection open, the
 * caller's SELECT privilege checked, the online table created.
 */
extern int64 fs_mat_write_c(FsView *v, const char *where, int nargs, Oid *types, Datum *vals,
							bool *nulls, const FsMatWindow *win, FsMatMethod method);

#endif
