/*
 * online_worker.h — the cache worker (online_worker.c): its GUC feature_store.worker_naptime
 * and its registration, from _PG_init; its entry point, named in the registration.
 */
#ifndef FS_ONLINE_WORKER_H
#define FS_ONLINE_WORKER_H

#include "postgres.h"

extern void fs_worker_register(void);
PGDLLEXPORT void fs_worker_main(Datum arg);

#endif
