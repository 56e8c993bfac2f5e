/*
 * sql_args.h — arguments of SQL-callable functions: a required text argument as a C string,
 * with null_value_not_allowed ("<what> must not be null") when it is NULL.
 */
#ifndef FS_SQL_ARGS_H
#define FS_SQL_ARGS_H

#include "postgres.h"
#include "fmgr.h"

extern char *fs_text_arg(FunctionCallInfo fcinfo, int n, const char *what);

#endif
