/*
 * key_hash.h — hash and equality of an entity's composite key (up to FS_MAX_KEYS columns, none
 * NULL), for the open-addressing key tables of the point-in-time join (pit_join_int.h) and of
 * materialization's winners (materialize_winners.h). Keys that are all integers hash and
 * compare their Datum bits (by-value integers are sign-extended into the Datum, so equal
 * values have equal bits); other types use their default hash and equality functions, with
 * the key columns' collations. Static inline: the tables are probed once per source row.
 */
#ifndef FS_KEY_HASH_H
#define FS_KEY_HASH_H

#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"

/* A 64-bit finalizer (murmur3's): spreads integer keys over the table's cells. */
static inline uint32
fs_mix64(uint64 x)
{
	x ^= x >> 33;
	x *= UINT64CONST(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64CONST(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return (uint32) x;
}

/* Hash of a key: Datum bits for integer keys (bitwise), else the types' hash functions, combined. */
static inline uint32
fs_key_hash(int nkeys, bool bitwise, FmgrInfo *hash, const Oid *coll, const Datum *k)
{
	uint32		h = 0;

	if (bitwise)
	{
		for (int i = 0; i < nkeys; i++)
			h = hash_combine(h, fs_mix64((uint64) k[i]));
		return h;
	}
	for (int i = 0; i < nkeys; i++)
		h = hash_combine(h, DatumGetUInt32(FunctionCall1Coll(&hash[i], coll[i], k[i])));
	return h;
}

/* Key equality with the types' default equality (bits for integer keys). */
static inline bool
fs_key_equal(int nkeys, bool bitwise, FmgrInfo *eq, const Oid *coll, const Datum *a, const Datum *b)
{
	for (int i = 0; i < nkeys; i++)
	{
		if (bitwise)
		{
			if (a[i] != b[i])
				return false;
		}
		else if (!DatumGetBool(FunctionCall2Coll(&eq[i], coll[i], a[i], b[i])))
			return false;
	}
	return true;
}

#endif
