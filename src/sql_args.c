/*
 * sql_args.c — reading the arguments of SQL-callable functions that are declared non-strict
 * (so that a NULL gets a clear error instead of a silent NULL result).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "sql_args.h"

/* A required text argument (NULL is null_value_not_allowed). */
char *
fs_text_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}
