/*
 * online_mode.h — what other concerns call of online_mode.c: the drop hook, and
 * fs_set_online_mode (fs_register_view sets the mode of a new version through it).
 */
#ifndef FS_ONLINE_MODE_H
#define FS_ONLINE_MODE_H

#include "postgres.h"
#include "fmgr.h"

/* Hook for fs_drop_view: drops the online tables of the versions being dropped. */
extern void fs_online_drop_views(const char *name, int32 version);

/* fs_register_view: re-registering with another online switch changes the mode as it does. */
extern Datum fs_set_online_mode(PG_FUNCTION_ARGS);

#endif
