/*
 * online_key.c — the cache's key of an entity: its key image (what identifies the entity within
 * a view) and the image's hash. Readers build them from typed keys (online_read.c), writers
 * from the rows they change in an online table (the per-key trigger in online_table.c, the C
 * upsert in materialize_upsert.c): both sides must build the same bytes, so both come here.
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "fmgr.h"

#include "online_cache.h"
#include "online_key.h"

/*
 * Key image: what identifies an entity within a view in the cache. Fixed-length keys by
 * value or bytes; text-like keys as a 2-byte length and the bytes. -1 when too long to cache.
 * Readers (typed keys) and writers (rows of the online table) must build the same bytes.
 */
static int
key_image(int nk, const bool *byval, const int16 *typlen, const Datum *keys, char *img)
{
	int			off = 0;

	for (int k = 0; k < nk; k++)
	{
		if (byval[k])
		{
			if (off + (int) sizeof(Datum) > FS_CACHE_KEY_MAX)
				return -1;
			memcpy(img + off, &keys[k], sizeof(Datum));
			off += sizeof(Datum);
		}
		else if (typlen[k] > 0)
		{
			if (off + typlen[k] > FS_CACHE_KEY_MAX)
				return -1;
			memcpy(img + off, DatumGetPointer(keys[k]), typlen[k]);
			off += typlen[k];
		}
		else
		{
			struct varlena *t = PG_DETOAST_DATUM_PACKED(keys[k]);
			size_t		len = VARSIZE_ANY_EXHDR(t);
			uint16		len16;

			/* check before narrowing: a long key must never alias a short one */
			if (off + 2 + len > FS_CACHE_KEY_MAX)
				return -1;
			len16 = (uint16) len;
			memcpy(img + off, &len16, 2);
			memcpy(img + off + 2, VARDATA_ANY(t), len);
			off += 2 + (int) len;
		}
	}
	return off;
}

int
fs_read_key_image(FsOnlineView *ov, const Datum *keys, char *img)
{
	return key_image(ov->view->entity.nkeys, ov->key_byval, ov->key_len, keys, img);
}

/*
 * Writer side of per-key invalidation: the cache hash of a key of view_id's online table, given
 * as the values of its first nkeys columns (desc: the table's). False when the key cannot be
 * cached (too long): then no entry of it can exist.
 */
bool
fs_read_key_hash_values(int32 view_id, TupleDesc desc, const Datum *keys, int nkeys, uint64 *hash)
{
	bool		byval[FS_MAX_KEYS];
	int16		typlen[FS_MAX_KEYS];
	char		img[FS_CACHE_KEY_MAX];
	int			len;

	for (int k = 0; k < nkeys; k++)
	{
		byval[k] = TupleDescAttr(desc, k)->attbyval;
		typlen[k] = TupleDescAttr(desc, k)->attlen;
	}
	len = key_image(nkeys, byval, typlen, keys, img);
	if (len < 0)
		return false;
	*hash = fs_key_image_hash(view_id, img, len);
	return true;
}

/* The same for a row of the online table in a slot (false also for a NULL key). */
bool
fs_read_key_hash_slot(int32 view_id, TupleTableSlot *slot, int nkeys, uint64 *hash)
{
	AttrNumber	att[FS_MAX_KEYS];

	for (int k = 0; k < nkeys; k++)
		att[k] = k + 1;
	return fs_read_key_hash_attrs(view_id, slot, att, nkeys, hash);
}

/*
 * The same for a row whose key columns are att[0..nkeys) (a source row of an aggregation
 * view): its key types are the entity's, so the image is the one readers build.
 */
bool
fs_read_key_hash_attrs(int32 view_id, TupleTableSlot *slot, const AttrNumber *att, int nkeys, uint64 *hash)
{
	Datum		keys[FS_MAX_KEYS];
	bool		byval[FS_MAX_KEYS];
	int16		typlen[FS_MAX_KEYS];
	char		img[FS_CACHE_KEY_MAX];
	int			len;

	for (int k = 0; k < nkeys; k++)
	{
		Form_pg_attribute a = TupleDescAttr(slot->tts_tupleDescriptor, att[k] - 1);
		bool		isnull;

		keys[k] = slot_getattr(slot, att[k], &isnull);
		if (isnull)
			return false;
		byval[k] = a->attbyval;
		typlen[k] = a->attlen;
	}
	len = key_image(nkeys, byval, typlen, keys, img);
	if (len < 0)
		return false;
	*hash = fs_key_image_hash(view_id, img, len);
	return true;
}
