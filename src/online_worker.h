/*
 * online_worker.h — the cache launcher and workers (online_worker.c): the GUC
 * feature_store.worker_naptime and the launcher's registration, from _PG_init; their entry points.
 */
#ifndef FS_ONLINE_WORKER_H
#define FS_ONLINE_WORKER_H

#include "postgres.h"

extern void fs_worker_register(void);
PGDLLEXPORT void fs_worker_main(Datum arg);
PGDLLEXPORT void fs_launcher_main(Datum arg);

#endif
