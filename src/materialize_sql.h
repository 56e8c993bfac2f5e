/*
 * materialize_sql.h — the SQL text of writes into an online table: the set-based upsert of each
 * entity's latest passing row, and its never-backwards ON CONFLICT clause.
 */
#ifndef FS_MATERIALIZE_SQL_H
#define FS_MATERIALIZE_SQL_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "registry.h"

/*
 * SQL of the set-based upsert: for every entity among the rows of from_item (alias s) that
 * satisfy `where` (which may use $n parameters), its latest row passing the view's checks,
 * written only where it is strictly newer (event, created) than the row already online.
 */
extern char *fs_mat_upsert_sql(FsView *v, const char *from_item, const char *where);

/* Appends the ON CONFLICT ... WHERE strictly-newer clause of a write into v's online table (alias o). */
extern void fs_mat_append_upsert(StringInfo sql, FsView *v);

#endif
