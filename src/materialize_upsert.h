/*
 * materialize_upsert.h — the C upsert of the one-pass materialization path
 * (materialize_upsert.c): writing winners into a non-empty online table without the executor.
 */
#ifndef FS_MATERIALIZE_UPSERT_H
#define FS_MATERIALIZE_UPSERT_H

#include "materialize_winners.h"

/* The online table's only index, its plain primary key on the keys (opened), or NULL. */
extern Relation mat_plain_key_index(MatState *st, Relation rel);

/* May the C upsert stand in for the executor's upsert into rel? */
extern bool mat_upsert_ok(MatState *st, Relation rel);
extern uint64 mat_upsert_winners(MatState *st, Relation rel, MatEntry **ents, uint64 n);

#endif
