/*
 * numeric_float.c — numeric to float8 for the vector form (fs_online_vector): numeric_float8
 * prints the numeric (numeric_out, a palloc'd string) and parses it back (float8in), about a
 * microsecond per feature, more than the whole cache probe. Here the digits are read directly:
 * a value m * 10^e with m < 2^53 and |e| <= 22 is exactly one IEEE multiplication or division of
 * two exactly representable doubles, hence correctly rounded (Clinger's fast path), which is what
 * float8in (strtod) returns for the same decimal; other values (more than 15-16 significant
 * digits, large exponents, NaN, infinities) build the same decimal text without a palloc and go
 * through strtod, which is correctly rounded too. Either way the result equals numeric_float8's.
 *
 * The numeric's on-disk layout (PostgreSQL 15's numeric.c, private there and stable on disk):
 * a 4-byte varlena header, a 16-bit header word, for the long format a 16-bit weight, then
 * base-10000 digits, the first of weight `weight` (value = sum digit[i] * 10000^(weight - i)).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/fmgrprotos.h"

#include "numeric_float.h"

#define NUM_SIGN_MASK	0xC000
#define NUM_NEG			0x4000
#define NUM_SHORT		0x8000
#define NUM_SPECIAL		0xC000
#define NUM_SHORT_SIGN	0x2000
#define NUM_SHORT_WSIGN 0x0040
#define NUM_SHORT_WMASK 0x003F

static const double pow10_exact[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

double
fs_numeric_float8(Numeric n)
{
	const char *p;
	uint16		h;
	int			weight;
	int			hdr;
	int			ndig;
	bool		neg;
	uint64		m = 0;
	int			e;
	double		d;
	char		text[80];
	int			len = 0;

	if (VARATT_IS_EXTENDED(n))
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(n)));
	p = VARDATA(n);
	memcpy(&h, p, sizeof(h));
	if ((h & NUM_SIGN_MASK) == NUM_SPECIAL)
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(n)));
	if (h & NUM_SHORT)
	{
		neg = (h & NUM_SHORT_SIGN) != 0;
		weight = (h & NUM_SHORT_WSIGN ? ~NUM_SHORT_WMASK : 0) | (h & NUM_SHORT_WMASK);
		hdr = sizeof(uint16);
	}
	else
	{
		int16		w;

		neg = (h & NUM_SIGN_MASK) == NUM_NEG;
		memcpy(&w, p + sizeof(uint16), sizeof(w));
		weight = w;
		hdr = 2 * sizeof(uint16);
	}
	ndig = (VARSIZE(n) - VARHDRSZ - hdr) / sizeof(int16);
	if (ndig == 0)
		return 0.0;
	if (ndig <= 4)
	{
		for (int i = 0; i < ndig; i++)
		{
			int16		dg;

			memcpy(&dg, p + hdr + i * sizeof(int16), sizeof(dg));
			m = m * 10000 + dg;
		}
		e = 4 * (weight - ndig + 1);
		if (m <= (UINT64CONST(1) << 53) && e >= -22 && e <= 22)
		{
			d = (double) m;
			d = e >= 0 ? d * pow10_exact[e] : d / pow10_exact[-e];
			return neg ? -d : d;
		}
	}
	/* the decimal text m0m1m2...e<exp>, then strtod (correctly rounded, like float8in) */
	if (ndig > 16)
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(n)));
	if (neg)
		text[len++] = '-';
	for (int i = 0; i < ndig; i++)
	{
		int16		dg;

		memcpy(&dg, p + hdr + i * sizeof(int16), sizeof(dg));
		text[len++] = '0' + dg / 1000;
		text[len++] = '0' + dg / 100 % 10;
		text[len++] = '0' + dg / 10 % 10;
		text[len++] = '0' + dg % 10;
	}
	snprintf(text + len, sizeof(text) - len, "e%d", 4 * (weight - ndig + 1));
	errno = 0;
	d = strtod(text, NULL);
	if (errno != 0 || isinf(d))
		/* out of range: numeric_float8 decides (and raises what it raises) */
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(n)));
	return d;
}
