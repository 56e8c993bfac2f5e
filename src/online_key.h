/*
 * online_key.h — the cache key of an entity within a view: the key image of its keys and the
 * image's hash, built alike by readers (typed keys) and writers (rows of the online table).
 */
#ifndef FS_ONLINE_KEY_H
#define FS_ONLINE_KEY_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "common/hashfn.h"

#include "online_meta.h"

struct TupleTableSlot;

/* Hash of a key image within view_id: the cache's key (and its key generation's bucket). */
static inline uint64
fs_key_image_hash(int32 view_id, const char *img, int imglen)
{
	return hash_bytes_extended((const unsigned char *) img, imglen, (uint64) view_id);
}

/* Key image of typed keys (FS_CACHE_KEY_MAX bytes of img); -1 when too long to cache. */
extern int	fs_read_key_image(FsOnlineView *ov, const Datum *keys, char *img);

/* Writers: the cache hash of an online-table row's key (false: not cacheable). */
extern bool fs_read_key_hash_slot(int32 view_id, struct TupleTableSlot *slot, int nkeys, uint64 *hash);
extern bool fs_read_key_hash_attrs(int32 view_id, struct TupleTableSlot *slot, const AttrNumber *att,
								   int nkeys, uint64 *hash);
extern bool fs_read_key_hash_values(int32 view_id, TupleDesc desc, const Datum *keys, int nkeys, uint64 *hash);

#endif
