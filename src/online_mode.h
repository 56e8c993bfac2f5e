/*
 * online_mode.h — what other concerns call of online_mode.c (fs_set_online_mode and
 * fs_online_reload are SQL-callable only).
 */
#ifndef FS_ONLINE_MODE_H
#define FS_ONLINE_MODE_H

#include "postgres.h"

/* Hook for fs_drop_view: drops the online tables of the versions being dropped. */
extern void fs_online_drop_views(const char *name, int32 version);

#endif
