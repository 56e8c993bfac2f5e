/*
 * security.h — running registry writes as the extension owner after the caller's privileges
 * have been checked, with a safe search_path. This is how CREATE MATERIALIZED VIEW / REFRESH
 * and RI triggers switch users inside the server; SECURITY DEFINER cannot do it because the
 * caller's identity, which the checks need, would be lost.
 */
#ifndef FS_SECURITY_H
#define FS_SECURITY_H

#include "postgres.h"

typedef struct FsOwnerContext
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} FsOwnerContext;

/* Owner of the feature_store schema, i.e. the role that created the extension. */
extern Oid	fs_extension_owner(void);

/* Switch to the extension owner with search_path = pg_catalog, pg_temp; undone by leave. */
extern void fs_owner_context_enter(FsOwnerContext *ctx);
extern void fs_owner_context_leave(FsOwnerContext *ctx);

/* True if role `user` has the privileges of the role named (or is a superuser). */
extern bool fs_is_member_of(Oid user, const char *rolename);

#endif
