/*
 * numeric_float.h — numeric to float8 without numeric_float8's detour through text, for the
 * vector form of serving (fs_online_vector).
 */
#ifndef FS_NUMERIC_FLOAT_H
#define FS_NUMERIC_FLOAT_H

#include "postgres.h"
#include "utils/numeric.h"

/* The float8 numeric_float8 returns for n (the same value, bit for bit). */
extern double fs_numeric_float8(Numeric n);

#endif
