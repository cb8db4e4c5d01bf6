/* bill — the providers' daily bill files (DOMAIN.md §3 and §4), parsed into
 * payment and refund lines, and the reconciliation of those lines with the
 * local records of the day. Pure: bytes in, structs and JSON out. */
#include "domain.h"

#include "util.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIPAY_COLUMNS 25
#define WECHAT_COLUMNS 27
#define MAX_CELLS 64

void
bill_clear(struct bill *b)
{
	for (size_t i = 0; b->lines != NULL && i < b->n; i++) {
		free(b->lines[i].out_trade_no);
		free(b->lines[i].out_refund_no);
		free(b->lines[i].provider_no);
	}
	free(b->lines);
	b->lines = NULL;
	b->n = 0;
}

static void fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

/* GBK (read as GB18030, its superset) to UTF-8, one line at a time (a
 * newline byte is never part of a GB18030 character): the converter and a
 * buffer reused from line to line. */
struct gbk {
	iconv_t cd;
	char *buf;
	size_t cap;
};

/* Converts [s, e) into g->buf; returns its length, or -1 when not valid. */
static long
gbk_line(struct gbk *g, const char *s, const char *e)
{
	size_t len = (size_t)(e - s), in_left = len, out_left;
	char *in = (char *)(uintptr_t)s, *o;

	if (g->cap < len * 2 + 16) {
		g->cap = len * 2 + 16;
		g->buf = xrealloc(g->buf, g->cap + 1);
	}
	o = g->buf;
	out_left = g->cap;
	iconv(g->cd, NULL, NULL, NULL, NULL);
	if (iconv(g->cd, &in, &in_left, &o, &out_left) == (size_t)-1)
		return -1;
	*o = '\0';
	return (long)(o - g->buf);
}

/* Trims spaces and TABs at both ends of [*s, *e). */
static void
trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

struct cell {
	const char *s;
	size_t len;
};

/* Splits [s, e) on sep (sep_len bytes) into trimmed cells; returns the count
 * (at most MAX_CELLS + 1, meaning too many). */
static size_t
split(const char *s, const char *e, const char *sep, size_t sep_len,
    struct cell *cells)
{
	size_t n = 0;

	for (;;) {
		const char *stop = s;
		if (sep_len ==
		    1) { /* the common case, without a memcmp a byte */
			stop = memchr(s, *sep, (size_t)(e - s));
			if (stop == NULL)
				stop = e;
		} else {
			while (stop + sep_len <= e &&
			    memcmp(stop, sep, sep_len) != 0)
				stop++;
		}
		if (stop + sep_len > e)
			stop = e;
		const char *cs = s, *ce = stop;
		trim(&cs, &ce);
		if (n == MAX_CELLS)
			return MAX_CELLS + 1;
		cells[n].s = cs;
		cells[n].len = (size_t)(ce - cs);
		n++;
		if (stop == e)
			return n;
		s = stop + sep_len;
	}
}

/* Splits [s, e) on ',' into untrimmed cells, eight bytes at a time (a
 * GBK trail byte is never ','); returns the count (at most MAX_CELLS + 1,
 * meaning too many). */
static size_t
split_commas(const char *s, const char *e, struct cell *cells)
{
	const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL,
	               commas = 0x2C2C2C2C2C2C2C2CULL;
	const char *p = s, *start = s;
	size_t n = 0;

	for (; e - p >= 8; p += 8) {
		uint64_t w, x;
		memcpy(&w, p, 8);
		x = w ^ commas; /* a ',' byte is 0 */
		/* the high bit of each zero byte, exactly */
		uint64_t m = ~(((x & low7) + low7) | x | low7);
		while (m != 0) {
			const char *c = p + (__builtin_ctzll(m) >> 3);
			if (n == MAX_CELLS)
				return MAX_CELLS + 1;
			cells[n].s = start;
			cells[n].len = (size_t)(c - start);
			n++;
			start = c + 1;
			m &= m - 1;
		}
	}
	for (; p < e; p++) {
		if (*p != ',')
			continue;
		if (n == MAX_CELLS)
			return MAX_CELLS + 1;
		cells[n].s = start;
		cells[n].len = (size_t)(p - start);
		n++;
		start = p + 1;
	}
	if (n == MAX_CELLS)
		return MAX_CELLS + 1;
	cells[n].s = start;
	cells[n].len = (size_t)(e - start);
	return n + 1;
}

static void
trim_cell(struct cell *c)
{
	const char *s = c->s, *e = c->s + c->len;

	trim(&s, &e);
	c->s = s;
	c->len = (size_t)(e - s);
}

static int
cell_is(const struct cell *c, const char *text)
{
	return c->len == strlen(text) && memcmp(c->s, text, c->len) == 0;
}

static int
column(const struct cell *cells, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (cell_is(&cells[i], name))
			return (int)i;
	return -1;
}

static char *
cell_dup(const struct cell *c)
{
	return c->len ? xstrndup(c->s, c->len) : NULL;
}

#define SHORT_CELL 64

/* A cell as a string for a line handed to emit: in tmp (SHORT_CELL bytes)
 * when it fits, so the line costs no allocation, else allocated (*own). */
static char *
cell_str(const struct cell *c, char *tmp, char **own)
{
	if (c == NULL || c->len == 0)
		return NULL;
	if (c->len >= SHORT_CELL)
		return *own = xstrndup(c->s, c->len);
	memcpy(tmp, c->s, c->len);
	tmp[c->len] = '\0';
	return tmp;
}

/* Stores the line, or hands it to b->emit; returns emit's answer (0). */
static int
add_line(struct bill *b, enum bill_kind kind, const struct cell *out_trade,
    const struct cell *out_refund, const struct cell *provider, int64_t amount)
{
	struct bill_line *l;
	int rc;

	if (b->emit != NULL) {
		char tmp[3][SHORT_CELL];
		char *own[3] = {NULL, NULL, NULL};
		struct bill_line one = {.kind = kind,
		    .out_trade_no = cell_str(out_trade, tmp[0], &own[0]),
		    .out_refund_no = cell_str(out_refund, tmp[1], &own[1]),
		    .provider_no = cell_str(provider, tmp[2], &own[2]),
		    .amount_fen = amount};
		b->n++;
		rc = b->emit(b->emit_arg, &one);
		for (size_t i = 0; i < 3; i++)
			free(own[i]);
		return rc;
	}
	if ((b->n & (b->n - 1)) == 0) /* capacity doubles at 2^k */
		b->lines = xrealloc(b->lines,
		    (b->n ? 2 * b->n : 1) * sizeof(*b->lines));
	l = &b->lines[b->n];
	l->kind = kind;
	l->out_trade_no = cell_dup(out_trade);
	l->out_refund_no = out_refund ? cell_dup(out_refund) : NULL;
	l->provider_no = cell_dup(provider);
	l->amount_fen = amount;
	b->n++;
	return 0;
}

/* Calls fn for each line of [data, data+len) with its 1-based number, CR
 * stripped; stops when fn returns non-zero and returns that. */
typedef int (*line_fn)(void *arg, long lineno, const char *s, const char *e);

static int
each_line(const char *data, size_t len, long *lineno, line_fn fn, void *arg)
{
	const char *p = data, *end = data + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		int rc;

		(*lineno)++;
		if (e > p && e[-1] == '\r')
			e--;
		if ((rc = fn(arg, *lineno, p, e)) != 0)
			return rc;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

/* Where a bill's bytes come from: memory, or a reader (rd set). */
struct src {
	const char *data;
	size_t len;
	bill_read_fn rd;
	void *rd_arg;
};

#define BILL_PIECE (256 * 1024)
#define BILL_MAX_LINE (1024 * 1024)

/* each_line over src: a reader's bytes a piece at a time (a line cut
 * between pieces carried over), so memory is one piece whatever the bill's
 * size. no_nul: a NUL byte fails with nul_msg. */
static int
src_lines(const struct src *src, line_fn fn, void *arg, int no_nul,
    const char *nul_msg, char *err, size_t err_size)
{
	size_t cap = BILL_PIECE, used = 0;
	long lineno = 0;
	char *buf;
	int rc = 0;

	if (src->rd == NULL) {
		if (no_nul && memchr(src->data, '\0', src->len) != NULL) {
			fail(err, err_size, "%s", nul_msg);
			return -1;
		}
		return each_line(src->data, src->len, &lineno, fn, arg);
	}
	buf = xmalloc(cap);
	for (;;) {
		if (used == cap) {
			if (cap >= BILL_MAX_LINE) {
				fail(err, err_size, "第 %ld 行过长",
				    lineno + 1);
				rc = -1;
				break;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		long n = src->rd(src->rd_arg, buf + used, cap - used);
		if (n < 0) {
			fail(err, err_size, "读取账单失败");
			rc = -1;
			break;
		}
		if (n == 0) {
			if (used > 0)
				rc = each_line(buf, used, &lineno, fn, arg);
			break;
		}
		if (no_nul && memchr(buf + used, '\0', (size_t)n) != NULL) {
			fail(err, err_size, "%s", nul_msg);
			rc = -1;
			break;
		}
		used += (size_t)n;
		const char *last = memrchr(buf, '\n', used);
		if (last == NULL)
			continue;
		size_t take = (size_t)(last + 1 - buf);
		if ((rc = each_line(buf, take, &lineno, fn, arg)) != 0)
			break;
		memmove(buf, buf + take, used - take);
		used -= take;
	}
	free(buf);
	return rc;
}

/* ---- Alipay 业务明细 ----------------------------------------------------- */

struct alipay_state {
	struct bill *b;
	char *err;
	size_t err_size;
	int have_header;
	int c_trade, c_out, c_type, c_amount, c_refund_no;
};

static int
alipay_line(void *arg, long lineno, const char *s, const char *e)
{
	struct alipay_state *st = arg;
	struct cell cells[MAX_CELLS + 1];
	size_t n;
	int64_t amount;

	trim(&s, &e);
	if (s == e || *s == '#')
		return 0;
	n = split(s, e, ",", 1, cells);
	if (!st->have_header) {
		st->c_trade = column(cells, n, "支付宝交易号");
		st->c_out = column(cells, n, "商户订单号");
		st->c_type = column(cells, n, "业务类型");
		st->c_amount = column(cells, n, "订单金额（元）");
		st->c_refund_no = column(cells, n, "退款批次号/请求号");
		if (n != ALIPAY_COLUMNS || st->c_trade != 0 || st->c_out < 0 ||
		    st->c_type < 0 || st->c_amount < 0 || st->c_refund_no < 0) {
			fail(st->err, st->err_size,
			    "第%ld行：不是支付宝业务明细的表头", lineno);
			return -1;
		}
		st->have_header = 1;
		return 0;
	}
	if (n != ALIPAY_COLUMNS) {
		fail(st->err, st->err_size, "第%ld行：应有%d列，实有%zu列",
		    lineno, ALIPAY_COLUMNS, n);
		return -1;
	}
	const struct cell *type = &cells[st->c_type],
	                  *amt = &cells[st->c_amount];
	int refund = cell_is(type, "退款");
	if (!refund && !cell_is(type, "交易"))
		return 0; /* other business types are not ours to match */
	/* Money moved: a payment is positive, a refund negative, never 0. */
	if (money_yuan_to_fen(amt->s, amt->len, 1, &amount) != 0 ||
	    (refund ? amount >= 0 : amount <= 0)) {
		fail(st->err, st->err_size, "第%ld行：金额“%.*s”不正确", lineno,
		    (int)amt->len, amt->s);
		return -1;
	}
	if (cells[st->c_out].len == 0 || cells[st->c_trade].len == 0 ||
	    (refund && cells[st->c_refund_no].len == 0)) {
		fail(st->err, st->err_size, "第%ld行：缺少交易号或订单号",
		    lineno);
		return -1;
	}
	return add_line(st->b, refund ? BILL_REFUND : BILL_PAYMENT,
	    &cells[st->c_out], refund ? &cells[st->c_refund_no] : NULL,
	    &cells[st->c_trade], amount < 0 ? -amount : amount);
}

struct alipay_gbk {
	struct gbk g;
	struct alipay_state *st;
	int bad_encoding;
};

/* A data line of an Alipay bill read without converting it (the cost of
 * iconv at 10⁶ lines): in GBK a trail byte is never ',', TAB, CR or LF, so
 * the line splits as its UTF-8 form would, the numbers and amount are
 * ASCII either way and the type is compared in GBK (交易 BDBB D2D7, 退款
 * CDCB BFEE). Only a line of ASCII and well-formed 2-byte sequences whose
 * read cells are plain goes this way; *rc is then the line's answer and 1
 * is returned. Anything else (a 4-byte GB18030 sequence, a byte iconv
 * refuses, a line to report) returns 0: the converting path takes it. */
static int
alipay_raw_line(struct alipay_state *st, const char *s, const char *e, int *rc)
{
	const unsigned char *p = (const unsigned char *)s,
	                    *end = (const unsigned char *)e;
	struct cell cells[MAX_CELLS + 1];
	int64_t amount;
	size_t n;

	while (p < end) {
		uint64_t w;
		if (end - p >= 8 &&
		    (memcpy(&w, p, 8), (w & 0x8080808080808080ULL) == 0)) {
			p += 8; /* eight ASCII bytes */
			continue;
		}
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p == 0x80 || *p == 0xFF || p + 1 >= end || p[1] < 0x40 ||
		    p[1] == 0x7F || p[1] == 0xFF)
			return 0;
		p += 2;
	}
	trim(&s, &e);
	if (s == e || *s == '#')
		return 0;
	n = split_commas(s, e, cells);
	if (n != ALIPAY_COLUMNS)
		return 0;
	/* only the cells read are trimmed */
	const int read[] = {st->c_out, st->c_trade, st->c_refund_no, st->c_type,
	    st->c_amount};
	for (size_t i = 0; i < 5; i++)
		trim_cell(&cells[read[i]]);
	const struct cell *type = &cells[st->c_type],
	                  *amt = &cells[st->c_amount];
	int refund = cell_is(type, "\xCD\xCB\xBF\xEE");
	if (!refund && !cell_is(type, "\xBD\xBB\xD2\xD7")) {
		*rc = 0; /* other business types are not ours to match */
		return 1;
	}
	if (money_yuan_to_fen(amt->s, amt->len, 1, &amount) != 0 ||
	    (refund ? amount >= 0 : amount <= 0) || cells[st->c_out].len == 0 ||
	    cells[st->c_trade].len == 0 ||
	    (refund && cells[st->c_refund_no].len == 0))
		return 0;
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < cells[read[i]].len; j++)
			if ((unsigned char)cells[read[i]].s[j] >= 0x80)
				return 0;
	*rc = add_line(st->b, refund ? BILL_REFUND : BILL_PAYMENT,
	    &cells[st->c_out], refund ? &cells[st->c_refund_no] : NULL,
	    &cells[st->c_trade], amount < 0 ? -amount : amount);
	return 1;
}

static int
alipay_gbk_line(void *arg, long lineno, const char *s, const char *e)
{
	struct alipay_gbk *a = arg;
	int rc;

	if (a->st->have_header && alipay_raw_line(a->st, s, e, &rc))
		return rc;
	long n = gbk_line(&a->g, s, e);

	if (n < 0) {
		a->bad_encoding = 1;
		return -1;
	}
	return alipay_line(a->st, lineno, a->g.buf, a->g.buf + n);
}

static int parse_alipay(struct bill *out, const struct src *src, char *err,
    size_t err_size);

int
bill_parse_alipay(struct bill *out, const char *data, size_t len, char *err,
    size_t err_size)
{
	out->emit = NULL;
	out->emit_arg = NULL;
	struct src src = {.data = data, .len = len};

	return parse_alipay(out, &src, err, err_size);
}

int
bill_stream_alipay(const char *data, size_t len, bill_emit_fn emit, void *arg,
    size_t *count, char *err, size_t err_size)
{
	struct bill b = {.emit = emit, .emit_arg = arg};
	struct src src = {.data = data, .len = len};
	int rc = parse_alipay(&b, &src, err, err_size);

	*count = b.n;
	return rc;
}

int
bill_read_alipay(bill_read_fn rd, void *rd_arg, bill_emit_fn emit, void *arg,
    size_t *count, char *err, size_t err_size)
{
	struct bill b = {.emit = emit, .emit_arg = arg};
	struct src src = {.rd = rd, .rd_arg = rd_arg};
	int rc = parse_alipay(&b, &src, err, err_size);

	*count = b.n;
	return rc;
}

static int
parse_alipay(struct bill *out, const struct src *src, char *err,
    size_t err_size)
{
	struct alipay_state st = {.b = out, .err = err, .err_size = err_size};
	struct alipay_gbk a = {.st = &st};
	int rc;

	out->lines = NULL;
	out->n = 0;
	a.g.cd = iconv_open("UTF-8", "GB18030");
	if (a.g.cd == (iconv_t)-1) {
		fail(err, err_size, "文件不是 GBK 编码");
		return -1;
	}
	rc = src_lines(src, alipay_gbk_line, &a, 0, NULL, err, err_size);
	iconv_close(a.g.cd);
	free(a.g.buf);
	if (a.bad_encoding) {
		fail(err, err_size, "文件不是 GBK 编码");
		rc = -1;
	}
	if (rc == 0 && !st.have_header) {
		fail(err, err_size, "缺少支付宝业务明细的表头");
		rc = -1;
	}
	if (rc != 0)
		bill_clear(out);
	return rc;
}

/* ---- WeChat Pay 交易账单 ------------------------------------------------- */

struct wechat_state {
	struct bill *b;
	char *err;
	size_t err_size;
	int have_header, summary; /* summary: 0 none, 1 header seen, 2 values */
	int c_txn, c_out, c_state, c_refund_id, c_refund_no, c_refund_amt,
	    c_total;
};

static int
wechat_line(void *arg, long lineno, const char *s, const char *e)
{
	struct wechat_state *st = arg;
	struct cell cells[MAX_CELLS + 1];
	size_t n;
	int64_t amount;

	if (lineno == 1 && e - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	trim(&s, &e);
	if (s == e)
		return 0;
	if (!st->have_header) {
		n = split(s, e, ",", 1, cells);
		st->c_txn = column(cells, n, "微信订单号");
		st->c_out = column(cells, n, "商户订单号");
		st->c_state = column(cells, n, "交易状态");
		st->c_refund_id = column(cells, n, "微信退款单号");
		st->c_refund_no = column(cells, n, "商户退款单号");
		st->c_refund_amt = column(cells, n, "退款金额");
		st->c_total = column(cells, n, "订单金额");
		if (n != WECHAT_COLUMNS || !cell_is(&cells[0], "交易时间") ||
		    st->c_txn < 0 || st->c_out < 0 || st->c_state < 0 ||
		    st->c_refund_id < 0 || st->c_refund_no < 0 ||
		    st->c_refund_amt < 0 || st->c_total < 0) {
			fail(st->err, st->err_size,
			    "第%ld行：不是微信支付交易账单的表头", lineno);
			return -1;
		}
		st->have_header = 1;
		return 0;
	}
	if (st->summary == 2) {
		fail(st->err, st->err_size, "第%ld行：汇总行之后还有内容",
		    lineno);
		return -1;
	}
	if (st->summary == 1) {
		if (*s != '`') {
			fail(st->err, st->err_size,
			    "第%ld行：汇总数据格式不正确", lineno);
			return -1;
		}
		st->summary = 2;
		return 0;
	}
	if (*s != '`') {
		n = split(s, e, ",", 1, cells);
		if (n > 0 && cell_is(&cells[0], "总交易单数")) {
			st->summary = 1;
			return 0;
		}
		fail(st->err, st->err_size, "第%ld行：单元格应以`开头", lineno);
		return -1;
	}
	n = split(s + 1, e, ",`", 2, cells);
	if (n != WECHAT_COLUMNS) {
		fail(st->err, st->err_size, "第%ld行：应有%d列，实有%zu列",
		    lineno, WECHAT_COLUMNS, n);
		return -1;
	}
	const struct cell *state = &cells[st->c_state];
	int refund = cell_is(state, "REFUND");
	if (!refund && !cell_is(state, "SUCCESS"))
		return 0; /* REVOKED, NOTPAY …: no money moved */
	const struct cell *amt =
	    &cells[refund ? st->c_refund_amt : st->c_total];
	if (money_yuan_to_fen(amt->s, amt->len, 0, &amount) != 0 ||
	    amount == 0) {
		fail(st->err, st->err_size, "第%ld行：金额“%.*s”不正确", lineno,
		    (int)amt->len, amt->s);
		return -1;
	}
	if (cells[st->c_out].len == 0 ||
	    (refund ? cells[st->c_refund_no].len == 0
	            : cells[st->c_txn].len == 0)) {
		fail(st->err, st->err_size, "第%ld行：缺少订单号", lineno);
		return -1;
	}
	return add_line(st->b, refund ? BILL_REFUND : BILL_PAYMENT,
	    &cells[st->c_out], refund ? &cells[st->c_refund_no] : NULL,
	    &cells[refund ? st->c_refund_id : st->c_txn], amount);
}

static int parse_wechat(struct bill *out, const struct src *src, char *err,
    size_t err_size);

int
bill_parse_wechat(struct bill *out, const char *data, size_t len, char *err,
    size_t err_size)
{
	out->emit = NULL;
	out->emit_arg = NULL;
	struct src src = {.data = data, .len = len};

	return parse_wechat(out, &src, err, err_size);
}

int
bill_stream_wechat(const char *data, size_t len, bill_emit_fn emit, void *arg,
    size_t *count, char *err, size_t err_size)
{
	struct bill b = {.emit = emit, .emit_arg = arg};
	struct src src = {.data = data, .len = len};
	int rc = parse_wechat(&b, &src, err, err_size);

	*count = b.n;
	return rc;
}

int
bill_read_wechat(bill_read_fn rd, void *rd_arg, bill_emit_fn emit, void *arg,
    size_t *count, char *err, size_t err_size)
{
	struct bill b = {.emit = emit, .emit_arg = arg};
	struct src src = {.rd = rd, .rd_arg = rd_arg};
	int rc = parse_wechat(&b, &src, err, err_size);

	*count = b.n;
	return rc;
}

static int
parse_wechat(struct bill *out, const struct src *src, char *err,
    size_t err_size)
{
	struct wechat_state st = {.b = out, .err = err, .err_size = err_size};
	int rc;

	out->lines = NULL;
	out->n = 0;
	rc = src_lines(src, wechat_line, &st, 1, "文件不是 UTF-8 文本", err,
	    err_size);
	if (rc == 0 && !st.have_header) {
		fail(err, err_size, "缺少微信支付交易账单的表头");
		rc = -1;
	} else if (rc == 0 && st.summary != 2) {
		fail(err, err_size, "缺少汇总行（总交易单数…）");
		rc = -1;
	}
	if (rc != 0)
		bill_clear(out);
	return rc;
}

/* ---- reconciliation ----------------------------------------------------- */

static int
local_cmp(const void *a, const void *b)
{
	const struct recon_local *x = *(const struct recon_local *const *)a;
	const struct recon_local *y = *(const struct recon_local *const *)b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->out_no, y->out_no);
}

static json_t *
item(const char *kind, enum bill_kind type, const char *out_no,
    const char *provider_no, const int64_t *local, const int64_t *remote)
{
	return json_pack("{s:s, s:s, s:s?, s:s?, s:o, s:o}", "kind", kind,
	    "type", type == BILL_REFUND ? "refund" : "payment", "out_trade_no",
	    out_no, "provider_trade_no", provider_no, "local_amount_fen",
	    local ? json_integer(*local) : json_null(), "remote_amount_fen",
	    remote ? json_integer(*remote) : json_null());
}

json_t *
recon_compare(const struct bill *b, const struct recon_local *local,
    size_t nlocal, struct recon_counts *counts)
{
	const struct recon_local **sorted =
	    xcalloc(nlocal ? nlocal : 1, sizeof(*sorted));
	char *seen = xcalloc(nlocal ? nlocal : 1, 1);
	json_t *items = json_array();

	memset(counts, 0, sizeof(*counts));
	for (size_t i = 0; i < nlocal; i++)
		sorted[i] = &local[i];
	qsort(sorted, nlocal, sizeof(*sorted), local_cmp);
	for (size_t i = 0; i < b->n; i++) {
		const struct bill_line *l = &b->lines[i];
		const char *no =
		    l->kind == BILL_REFUND ? l->out_refund_no : l->out_trade_no;
		struct recon_local key = {.kind = l->kind, .out_no = no};
		const struct recon_local *kp = &key, **hit;

		hit = bsearch(&kp, sorted, nlocal, sizeof(*sorted), local_cmp);
		if (hit == NULL || seen[hit - sorted]) {
			counts->missing_local++;
			json_array_append_new(items,
			    item("missing_local", l->kind, no, l->provider_no,
			        NULL, &l->amount_fen));
			continue;
		}
		seen[hit - sorted] = 1;
		if ((*hit)->amount_fen != l->amount_fen) {
			counts->amount_mismatch++;
			json_array_append_new(items,
			    item("amount_mismatch", l->kind, no, l->provider_no,
			        &(*hit)->amount_fen, &l->amount_fen));
			continue;
		}
		counts->matched++;
	}
	for (size_t i = 0; i < nlocal; i++) {
		if (seen[i])
			continue;
		counts->missing_remote++;
		json_array_append_new(items,
		    item("missing_remote", sorted[i]->kind, sorted[i]->out_no,
		        sorted[i]->provider_no, &sorted[i]->amount_fen, NULL));
	}
	free(sorted);
	free(seen);
	return items;
}
