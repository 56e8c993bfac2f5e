/*
 * security.c — privilege switching for registry writes.
 *
 * The fs_* functions are not SECURITY DEFINER: they first check what the *caller* may do
 * (SELECT on a source, ownership of a view), then enter the owner context to write the
 * registry tables, which ordinary roles cannot write. Errors unwind the user switch through
 * the transaction/subtransaction abort, and the GUC nest level through AtEOXact_GUC, so
 * leave() is only needed on success.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "catalog/pg_namespace.h"
#include "access/htup_details.h"

#include "security.h"

Oid
fs_extension_owner(void)
{
	Oid			nspid = get_namespace_oid("feature_store", true);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"feature_store\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION feature_store.")));
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nspid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nspid);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

void
fs_owner_context_enter(FsOwnerContext *ctx)
{
	GetUserIdAndSecContext(&ctx->save_userid, &ctx->save_sec_context);
	SetUserIdAndSecContext(fs_extension_owner(),
						   ctx->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	ctx->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
fs_owner_context_leave(FsOwnerContext *ctx)
{
	AtEOXact_GUC(false, ctx->save_nestlevel);
	SetUserIdAndSecContext(ctx->save_userid, ctx->save_sec_context);
}

bool
fs_is_member_of(Oid user, const char *rolename)
{
	Oid			roleid = get_role_oid(rolename, true);

	if (superuser_arg(user))
		return true;
	if (!OidIsValid(roleid))
		return false;
	return has_privs_of_role(user, roleid);
}
