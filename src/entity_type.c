/*
 * entity_type.c — fs_entity: strict text I/O, a constructor from typed keys, equality/hash.
 *
 * Text form:  name ':' key            e.g. driver:1001
 *             name ':' '(' key {',' key} ')'   e.g. user_merchant:(42,7)
 * A key is either unquoted (non-empty, none of  , ( ) " \  and no white space) or double
 * quoted with \" and \\ as the only escapes ("a,b", "", "say \"hi\""). The name follows the
 * registry's naming rules. Anything else is rejected with invalid_text_representation, so a
 * literal means exactly one thing. Output quotes a key only when it must.
 */
#include "postgres.h"

#include "access/hash.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "entity_type.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(fs_entity_in);
PG_FUNCTION_INFO_V1(fs_entity_out);
PG_FUNCTION_INFO_V1(fs_entity_make);
PG_FUNCTION_INFO_V1(fs_entity_name);
PG_FUNCTION_INFO_V1(fs_entity_keys);
PG_FUNCTION_INFO_V1(fs_entity_eq);
PG_FUNCTION_INFO_V1(fs_entity_ne);
PG_FUNCTION_INFO_V1(fs_entity_hash);

/* The entity name is the first NUL-terminated string of the data. */
const char *
fs_entity_val_name(const FsEntityVal *e)
{
	return e->data;
}

/* Pointers to the key texts, which follow the name (no copies: serving calls this per lookup). */
void
fs_entity_val_keys(const FsEntityVal *e, const char **keys)
{
	const char *p = e->data + strlen(e->data) + 1;

	for (int i = 0; i < e->nkeys; i++)
	{
		keys[i] = p;
		p += strlen(p) + 1;
	}
}

/* Reports a malformed literal; detail says what is wrong and where. */
static void
bad_literal(const char *input, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type fs_entity: \"%s\"", input),
			 errdetail("%s", detail),
			 errhint("Write entity:key, such as 'driver:1001', or entity:(key1,key2) for composite keys; double-quote keys containing , ( ) \" \\ or spaces.")));
}

/* Characters that force quoting: the separators of the syntax and white space. */
static bool
is_special(char c)
{
	return c == ',' || c == '(' || c == ')' || c == '"' || c == '\\' ||
		c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Parses one key at *pp into buf; advances *pp. */
static void
parse_key(const char *input, const char **pp, StringInfo buf)
{
	const char *p = *pp;

	if (*p == '"')
	{
		p++;
		for (;;)
		{
			if (*p == '\0')
				bad_literal(input, "A quoted key is not closed.");
			if (*p == '"')
			{
				p++;
				break;
			}
			if (*p == '\\')
			{
				p++;
				if (*p != '"' && *p != '\\')
					bad_literal(input, "Inside quotes, only \\\" and \\\\ are valid escapes.");
			}
			appendStringInfoChar(buf, *p++);
		}
	}
	else
	{
		const char *start = p;

		while (*p != '\0' && !is_special(*p))
			p++;
		if (p == start)
			bad_literal(input, *p == '\0' ? "The key is missing." :
						"An unquoted key must not be empty or contain , ( ) \" \\ or white space.");
		appendBinaryStringInfo(buf, start, p - start);
	}
	*pp = p;
}

/* Builds the varlena from a name and key strings (validated by the callers). */
static FsEntityVal *
make_entity(const char *name, int nkeys, char **keys)
{
	size_t		lens[FS_MAX_KEYS + 1];
	size_t		namelen = strlen(name) + 1;
	size_t		total = namelen;
	FsEntityVal *e;
	char	   *p;

	for (int i = 0; i < nkeys; i++)
		total += (lens[i] = strlen(keys[i]) + 1);
	e = palloc(offsetof(FsEntityVal, data) + total);
	SET_VARSIZE(e, offsetof(FsEntityVal, data) + total);
	e->nkeys = (int16) nkeys;
	p = e->data;
	memcpy(p, name, namelen);
	p += namelen;
	for (int i = 0; i < nkeys; i++)
	{
		memcpy(p, keys[i], lens[i]);
		p += lens[i];
	}
	return e;
}

/* Entity names follow the registry's rules; a literal with another name is malformed. */
static void
check_entity_name(const char *input, const char *name)
{
	bool		ok = fs_is_valid_name(name);

	if (!ok)
		bad_literal(input, "The entity name must start with a letter or underscore and contain only ASCII letters, digits and underscores.");
}

/*
 * fs_entity_in: strict parser (see the file header). Checks syntax only: whether the entity
 * exists and its keys fit the key types is decided when the value is served, so that the
 * input function stays independent of the registry.
 */
Datum
fs_entity_in(PG_FUNCTION_ARGS)
{
	const char *input = PG_GETARG_CSTRING(0);
	const char *colon = strchr(input, ':');
	const char *p;
	char	   *name;
	char	   *keys[FS_MAX_KEYS];
	int			nkeys = 0;

	if (colon == NULL)
		bad_literal(input, "The colon between entity name and key is missing.");
	name = pnstrdup(input, colon - input);
	check_entity_name(input, name);
	p = colon + 1;
	if (*p == '(')
	{
		p++;
		for (;;)
		{
			StringInfoData k;

			if (nkeys == FS_MAX_KEYS)
				bad_literal(input, "An entity has at most 8 key columns.");
			initStringInfo(&k);
			parse_key(input, &p, &k);
			keys[nkeys++] = k.data;
			if (*p == ',')
				p++;
			else if (*p == ')')
			{
				p++;
				break;
			}
			else
				bad_literal(input, "Composite keys are separated by commas and closed by a parenthesis, without spaces.");
		}
	}
	else
	{
		StringInfoData k;

		initStringInfo(&k);
		parse_key(input, &p, &k);
		keys[nkeys++] = k.data;
	}
	if (*p != '\0')
		bad_literal(input, "Unexpected characters follow the key.");
	PG_RETURN_POINTER(make_entity(name, nkeys, keys));
}

/* Appends a key, quoted only when it must be, so output reads back to the same value. */
static void
append_key(StringInfo buf, const char *k)
{
	bool		quote = *k == '\0';

	for (const char *c = k; *c && !quote; c++)
		quote = is_special(*c);
	if (!quote)
	{
		appendStringInfoString(buf, k);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (const char *c = k; *c; c++)
	{
		if (*c == '"' || *c == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *c);
	}
	appendStringInfoChar(buf, '"');
}

/* fs_entity_out: the canonical text form, which fs_entity_in reads back to the same value. */
Datum
fs_entity_out(PG_FUNCTION_ARGS)
{
	FsEntityVal *e = PG_GETARG_FS_ENTITY_P(0);
	const char *keys[FS_MAX_KEYS];
	StringInfoData buf;

	fs_entity_val_keys(e, keys);
	initStringInfo(&buf);
	appendStringInfo(&buf, "%s:", fs_entity_val_name(e));
	if (e->nkeys == 1)
		append_key(&buf, keys[0]);
	else
	{
		appendStringInfoChar(&buf, '(');
		for (int i = 0; i < e->nkeys; i++)
		{
			if (i > 0)
				appendStringInfoChar(&buf, ',');
			append_key(&buf, keys[i]);
		}
		appendStringInfoChar(&buf, ')');
	}
	PG_RETURN_CSTRING(buf.data);
}

/*
 * Output functions of the constructor's arguments, looked up once per call site (fn_extra):
 * building entities in a query (fs_entity('user', g) over many rows) must be cheap.
 */
typedef struct MakeCache
{
	Oid			types[FS_MAX_KEYS];
	FmgrInfo	out[FS_MAX_KEYS];
	char		name[NAMEDATALEN];	/* the last entity name that passed the check */
} MakeCache;

static MakeCache *
make_cache(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(MakeCache));
	return fcinfo->flinfo->fn_extra;
}

/* Integer keys are formatted here, without a call of their output function and its palloc. */
static char *
datum_text(FunctionCallInfo fcinfo, int i, Datum d, Oid type, char *buf)
{
	MakeCache  *mc = make_cache(fcinfo);

	switch (type)
	{
		case INT8OID:
			pg_lltoa(DatumGetInt64(d), buf);
			return buf;
		case INT4OID:
			pg_ltoa(DatumGetInt32(d), buf);
			return buf;
		case INT2OID:
			pg_ltoa((int32) DatumGetInt16(d), buf);
			return buf;
	}
	if (mc->types[i] != type)
	{
		Oid			outfn;
		bool		varlena;

		getTypeOutputInfo(type, &outfn, &varlena);
		fmgr_info_cxt(outfn, &mc->out[i], fcinfo->flinfo->fn_mcxt);
		mc->types[i] = type;
	}
	return OutputFunctionCall(&mc->out[i], d);
}

/*
 * fs_entity(entity text, VARIADIC keys "any"): builds a value from typed keys, so callers
 * never format or quote keys themselves: fs_entity('driver', 1001), fs_entity('um', 42, 7).
 */
Datum
fs_entity_make(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *keys[FS_MAX_KEYS];
	char		bufs[FS_MAX_KEYS][MAXINT8LEN + 1];
	int			nkeys = 0;
	MakeCache  *mc;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("entity name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	/* a call site mostly repeats one name: check it once */
	mc = make_cache(fcinfo);
	if (strcmp(mc->name, name) != 0)
	{
		fs_check_name("entity", name);
		strlcpy(mc->name, name, NAMEDATALEN);
	}
	if (get_fn_expr_variadic(fcinfo->flinfo))
	{
		ArrayType  *arr;
		Oid			elt;
		int16		typlen;
		bool		byval;
		char		align;
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		if (PG_ARGISNULL(1))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("entity keys must not be null")));
		arr = PG_GETARG_ARRAYTYPE_P(1);
		elt = ARR_ELEMTYPE(arr);
		get_typlenbyvalalign(elt, &typlen, &byval, &align);
		deconstruct_array(arr, elt, typlen, byval, align, &elems, &nulls, &n);
		if (n > FS_MAX_KEYS)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("an entity has at most %d key columns", FS_MAX_KEYS)));
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("entity key must not be null")));
			keys[nkeys] = datum_text(fcinfo, nkeys, elems[i], elt, bufs[nkeys]);
			nkeys++;
		}
	}
	else
	{
		for (int i = 1; i < PG_NARGS(); i++)
		{
			if (nkeys == FS_MAX_KEYS)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("an entity has at most %d key columns", FS_MAX_KEYS)));
			if (PG_ARGISNULL(i))
				ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("entity key must not be null")));
			keys[nkeys] = datum_text(fcinfo, nkeys, PG_GETARG_DATUM(i), get_fn_expr_argtype(fcinfo->flinfo, i), bufs[nkeys]);
			nkeys++;
		}
	}
	if (nkeys == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("an entity needs at least one key")));
	PG_RETURN_POINTER(make_entity(name, nkeys, keys));
}

/* Accessors for SQL users: the entity name and the key texts. */
Datum
fs_entity_name(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(fs_entity_val_name(PG_GETARG_FS_ENTITY_P(0))));
}

Datum
fs_entity_keys(PG_FUNCTION_ARGS)
{
	FsEntityVal *e = PG_GETARG_FS_ENTITY_P(0);
	const char *keys[FS_MAX_KEYS];
	Datum		d[FS_MAX_KEYS];

	fs_entity_val_keys(e, keys);
	for (int i = 0; i < e->nkeys; i++)
		d[i] = CStringGetTextDatum(keys[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, e->nkeys, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Equality is byte equality of the canonical form (same name, same key texts). */
static bool
entity_eq(FunctionCallInfo fcinfo)
{
	FsEntityVal *a = PG_GETARG_FS_ENTITY_P(0);
	FsEntityVal *b = PG_GETARG_FS_ENTITY_P(1);

	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

/* SQL-callable = and <> over entity_eq. */
Datum
fs_entity_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(entity_eq(fcinfo));
}

/* Negator of =, for completeness of the operator family. */
Datum
fs_entity_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!entity_eq(fcinfo));
}

/* Hash over the same bytes equality compares, so hash joins and GROUP BY agree with =. */
Datum
fs_entity_hash(PG_FUNCTION_ARGS)
{
	FsEntityVal *e = PG_GETARG_FS_ENTITY_P(0);

	return hash_any((unsigned char *) &e->nkeys, VARSIZE(e) - offsetof(FsEntityVal, nkeys));
}
