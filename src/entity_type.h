/*
 * entity_type.h — the fs_entity type: an entity name plus its key values as text, e.g.
 * 'driver:1001' or 'user_merchant:(42,7)'. Serving functions take it as their argument.
 */
#ifndef FS_ENTITY_TYPE_H
#define FS_ENTITY_TYPE_H

#include "postgres.h"
#include "fmgr.h"

/*
 * On-disk/in-memory form: a varlena holding the number of keys and then, NUL-terminated,
 * the entity name and each key's text. Keys are stored as text because their types belong
 * to the registry, which an input function must not read; serving converts them with the
 * entity's key types (cached per backend).
 */
typedef struct FsEntityVal
{
	int32		vl_len_;
	int16		nkeys;
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* name\0key1\0...keyN\0 */
} FsEntityVal;

#define DatumGetFsEntityP(d)	((FsEntityVal *) PG_DETOAST_DATUM(d))
#define PG_GETARG_FS_ENTITY_P(n) DatumGetFsEntityP(PG_GETARG_DATUM(n))

/* Name of the entity and the i-th key (0-based) of a value. */
extern const char *fs_entity_val_name(const FsEntityVal *e);
extern void fs_entity_val_keys(const FsEntityVal *e, const char **keys);

#endif
