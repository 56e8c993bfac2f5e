/*
 * stream.h — online mode 'stream': the statement triggers on a view's source that upsert each
 * statement's new rows into the online table (see stream.c).
 */
#ifndef FS_STREAM_H
#define FS_STREAM_H

#include "postgres.h"
#include "registry.h"

/* Drops the streaming triggers of a view version (inside the caller's SPI + owner context). */
extern void fs_stream_drop_triggers(FsView *v);
extern void fs_stream_create_triggers(FsView *v);
/* The replica row trigger of a streaming view, when missing (same context). */
extern void fs_stream_create_replica_trigger(FsView *v);

/* TRIGGER privilege on the source (insufficient_privilege otherwise). */
extern void fs_stream_check_privilege(FsView *v);

#endif
