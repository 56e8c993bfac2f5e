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
extern void fs_read_end(FsReadState *st);

/* Reads the row of entity e in view ov (e's name must be ov's entity); false = not found. */
extern bool fs_read_row(FsReadState *st, FsOnlineView *ov, FsEntityVal *e, FsOnlineRow *row);

/* Worker: loads every row of the view into the cache under generation gen. */
extern uint64 fs_read_load_view(FsOnlineView *ov, int slot, uint64 gen);

/* Encodes a row as cache payload; returns its length (buf of FS_CACHE_DATA bytes). */
extern int	fs_read_key_image(FsOnlineView *ov, const Datum *keys, char *img);

#endif
