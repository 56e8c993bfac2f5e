/*
 * materialize_write.h — the writers of the one-pass materialization path (materialize_write.c):
 * meeting the online table with the winners of a run.
 */
#ifndef FS_MATERIALIZE_WRITE_H
#define FS_MATERIALIZE_WRITE_H

#include "materialize_winners.h"

/* Drops the winners not strictly newer than their row online; returns the rows online. */
extern uint64 mat_merge_online(MatState *st, Relation rel);

/* Writes the kept winners (bulk insert, C upsert or one statement); returns the rows written. */
extern uint64 mat_write_winners(MatState *st, Relation rel, bool upsert);

#endif
