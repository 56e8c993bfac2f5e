/*
 * online_read.h — reading one entity's row of one online view: from the shared cache when
 * the protocol allows, else from the durable online table (and then filling the cache).
 */
#ifndef FS_ONLINE_READ_H
#define FS_ONLINE_READ_H

#include "postgres.h"
#include "utils/jsonb.h"

#include "entity_type.h"
#include "online_meta.h"

typedef struct FsOnlineRow
{
	bool		found;
	TimestampTz event_ts;
	TimestampTz created_ts;
	bool		created_null;
	Jsonb	   *features;		/* {"view": {"feature": value, ...}}: served as is */
} FsOnlineRow;

/* The inner {"feature": value, ...} object of a found row. */
extern JsonbContainer *fs_row_inner(FsOnlineView *ov, FsOnlineRow *row);

/* Per-call state: SPI/owner context opened lazily for read-throughs, closed by fs_read_end. */
typedef struct FsReadState
{
	bool		spi_open;
	bool		notice_given;
} FsReadState;

extern void fs_read_begin(FsReadState *st);
/* Whether the cache serves this database; a NOTICE once per session when it does not. */
extern bool fs_read_cache_here(void);
extern void fs_read_end(FsReadState *st);

/* Reads the row of entity e in view ov (e's name must be ov's entity); false = not found. */
extern bool fs_read_row(FsReadState *st, FsOnlineView *ov, FsEntityVal *e, FsOnlineRow *row);
/* An fs_entity's keys as the view's key types; false when the view has no online table. */
extern bool fs_read_entity_keys(FsOnlineView *ov, FsEntityVal *e, Datum *keys);

/* The same for typed keys (the entity's key types, in key order). */
extern bool fs_read_row_keys(FsReadState *st, FsOnlineView *ov, Datum *keys, FsOnlineRow *row);

/*
 * Work memory of a batch read for up to cap keys, reusable from call to call (allocating it
 * per call costs page faults that rival the cache probes). Cache hits' jsonb live in it.
 */
typedef struct FsReadScratch
{
	int			cap;
	char	   *imgs;
	int		   *imglen;
	uint64	   *hash;
	int		   *next_dup;
	int		   *miss;
	struct FsCacheProbe *probes;
	char	   *bufs;
} FsReadScratch;

extern FsReadScratch *fs_read_scratch(MemoryContext cxt, int cap);

/*
 * Batch: rows[i] for keys[i * nkeys .. ] (knull[i]: no key, not found), n <= sc->cap; one
 * cache pass with each bucket lock taken once, one query for all misses. Rows found in the
 * cache point into sc: valid until sc is used again.
 */
extern void fs_read_rows(FsReadState *st, FsOnlineView *ov, int n, const Datum *keys,
						 const bool *knull, FsOnlineRow *rows, FsReadScratch *sc);

/* Worker: loads every row of the view into the cache tagged with fill tag `tag`. */
extern uint64 fs_read_load_view(FsOnlineView *ov, int slot, uint64 tag);

#endif
