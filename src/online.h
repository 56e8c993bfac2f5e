/* online.h — setup of the online store, called from _PG_init. */
#ifndef FS_ONLINE_H
#define FS_ONLINE_H

extern void fs_cache_init(void);
extern void fs_online_table_init(void);
extern void fs_worker_register(void);

#endif
