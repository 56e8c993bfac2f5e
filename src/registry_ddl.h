/*
 * registry_ddl.h — the checks every registry command shares (registry_ddl.c), used by the
 * commands there and by fs_register_view (registry_view.c).
 */
#ifndef FS_REGISTRY_DDL_H
#define FS_REGISTRY_DDL_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/array.h"

/* tags (argument argno) must be NULL or a jsonb object: invalid_parameter_value otherwise. */
extern void fs_ddl_check_tags(FunctionCallInfo fcinfo, int argno);

/* A text array as C strings; errors on NULL elements or more than one dimension. */
extern char **fs_ddl_text_array_to_cstrings(ArrayType *arr, const char *what, int *n);

/* Key columns must be hashable and sortable with a stable text form: the common key types. */
extern bool fs_ddl_supported_key_type(Oid type);

/* Serializes registrations (inside SPI, as the extension owner). */
extern void fs_ddl_lock_registry(void);

/* Errors with insufficient_privilege unless caller is (a member of) registered_by. */
extern void fs_ddl_check_owner(const char *kind, const char *name, const char *registered_by, Oid caller);

#endif
