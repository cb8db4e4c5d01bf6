/* Unit tests for bill: the Alipay 业务明细 (GBK, '#' comments, 25 columns,
 * TAB-padded cells, negative refunds) and WeChat 交易账单 (backtick cells,
 * summary lines) parsers, and the reconciliation of their lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "util.h"

#define ALIPAY_HEADER                                                                                                                                          \
	"支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"                \
	"对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）," \
	"券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"

static const char alipay_utf8[] =
    "#支付宝业务明细查询\r\n"
    "#账号：[20881011179556110156]\r\n"
    "#起始日期：[2024年05月01日 00:00:00]   终止日期：[2024年05月02日 00:00:00]\r\n"
    "#-----------------------------------------业务明细列表----------------------------------------\r\n" ALIPAY_HEADER
    "\r\n"
    "2024050122001411111111111111\t,P1\t,交易\t,CA延期年检\t,2024-05-01 10:00:00\t,2024-05-01 10:00:05\t,"
    "\t,\t,\t,\t,buyer@example.com\t,650.00\t,650.00\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,"
    "\t,-3.90\t,0.00\t,\t\r\n"
    "2024050122001422222222222222\t,P2\t,交易\t,CA延期年检\t,2024-05-01 11:00:00\t,2024-05-01 11:00:05\t,"
    "\t,\t,\t,\t,b2@example.com\t,0.01\t,0.01\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,"
    "\t,0.00\t,0.00\t,\t\r\n"
    "2024050122001411111111111111\t,P1\t,退款\t,CA延期年检\t,2024-05-01 10:00:00\t,2024-05-01 15:00:00\t,"
    "\t,\t,\t,\t,buyer@example.com\t,-100.00\t,-100.00\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,"
    "R1\t,0.60\t,0.00\t,\t\r\n"
    "#-----------------------------------------业务明细列表结束------------------------------------\r\n"
    "#交易合计：2笔，商家实收：650.01元，商家优惠：0.00元\r\n"
    "#退款合计：1笔，商家实收：-100.00元，商家优惠：0.00元\r\n"
    "#导出时间：[2024年05月02日 09:00:00]\r\n";

#define WECHAT_HEADER                                                                                                                                          \
	"交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行," \
	"货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"  \
	"商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"

static const char wechat_bill[] = WECHAT_HEADER
    "\r\n"
    "`2024-05-01 10:00:05,`wx8888888888888888,`1900000001,`0,`,`4200000001202405011111111111,"
    "`W1,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`650.00,`0.00,`0,`0,`0.00,"
    "`0.00,`,`,`CA延期年检,`,`3.90000,`0.60%,`650.00,`0.00,`\r\n"
    "`2024-05-01 12:00:00,`wx8888888888888888,`1900000001,`0,`,`4200000001202405011111111111,"
    "`W1,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,"
    "`50000000012024050100000000001,`WR1,`100.00,`0.00,`ORIGINAL,`SUCCESS,`CA延期年检,`,`-0.60000,"
    "`0.60%,`0.00,`100.00,`\r\n"
    "`2024-05-01 13:00:00,`wx8888888888888888,`1900000001,`0,`,`4200000001202405012222222222,"
    "`W2,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,"
    "`0.00,`,`,`CA延期年检,`,`0.00000,`0.60%,`0.01,`0.00,`\r\n"
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
    "`2,`650.01,`100.00,`0.00,`3.30000,`650.01,`100.00\r\n";

static char *
to_gbk(const char *utf8, size_t *len)
{
	iconv_t cd = iconv_open("GBK", "UTF-8");
	size_t in_left = strlen(utf8), cap = in_left + 16, out_left = cap;
	char *out = xmalloc(cap), *o = out, *in = (char *)(uintptr_t)utf8;

	assert_true(cd != (iconv_t)-1);
	assert_true(iconv(cd, &in, &in_left, &o, &out_left) != (size_t)-1);
	iconv_close(cd);
	*len = (size_t)(o - out);
	return out;
}

static void
test_alipay_bill(void **state)
{
	struct bill b;
	char err[256] = "", *gbk;
	size_t len;

	gbk = to_gbk(alipay_utf8, &len);
	assert_int_equal(bill_parse_alipay(&b, gbk, len, err, sizeof(err)), 0);
	assert_int_equal(b.n, 3);
	assert_int_equal(b.lines[0].kind, BILL_PAYMENT);
	assert_string_equal(b.lines[0].out_trade_no, "P1");
	assert_string_equal(b.lines[0].provider_no,
	    "2024050122001411111111111111");
	assert_null(b.lines[0].out_refund_no);
	assert_int_equal(b.lines[0].amount_fen, 65000);
	assert_int_equal(b.lines[1].amount_fen, 1);
	assert_int_equal(b.lines[2].kind, BILL_REFUND);
	assert_string_equal(b.lines[2].out_trade_no, "P1");
	assert_string_equal(b.lines[2].out_refund_no, "R1");
	assert_int_equal(b.lines[2].amount_fen, 10000);
	bill_clear(&b);
	free(gbk);
}

/* Data lines are read without converting them when they are plain (see
 * alipay_raw_line); the others go through iconv as before, with the same
 * results: a number in Chinese arrives in UTF-8, a 4-byte GB18030
 * character elsewhere is fine, a byte that is not GBK fails the file. */
static void
test_alipay_bill_raw_and_converted(void **state)
{
	struct bill b;
	char err[256] = "", *gbk, *text;
	size_t len;

	text = xasprintf("#c\n" ALIPAY_HEADER "\n%s\n%s\n%s\n",
	    "T1,订单1,交易,x,,,,,,,,1.00,1.00,0,0,0,0,0,,0,0,,0,0,",
	    "T2,P2,交易,\xf0\xa0\x80\x80,,,,,,,,2.00,2.00,0,0,0,0,0,,0,0,,0,0,",
	    "T3,P3,退款,x,,,,,,,,-3.00,-3.00,0,0,0,0,0,,0,0,R3,0,0,");
	iconv_t cd = iconv_open("GB18030", "UTF-8");
	size_t in_left = strlen(text), cap = 2 * in_left, out_left = cap;
	char *in = text, *o;
	gbk = xmalloc(cap);
	o = gbk;
	assert_true(iconv(cd, &in, &in_left, &o, &out_left) != (size_t)-1);
	iconv_close(cd);
	len = (size_t)(o - gbk);
	assert_int_equal(bill_parse_alipay(&b, gbk, len, err, sizeof(err)), 0);
	assert_int_equal(b.n, 3);
	assert_string_equal(b.lines[0].out_trade_no, "订单1");
	assert_string_equal(b.lines[1].out_trade_no, "P2");
	assert_int_equal(b.lines[1].amount_fen, 200);
	assert_int_equal(b.lines[2].kind, BILL_REFUND);
	assert_string_equal(b.lines[2].out_refund_no, "R3");
	assert_int_equal(b.lines[2].amount_fen, 300);
	bill_clear(&b);
	/* 0x80 alone in 商品名称: not GBK, whichever way the line is read */
	char *x = memmem(gbk, len, ",x,", 3);
	assert_non_null(x);
	x[1] = (char)0x80;
	assert_int_equal(bill_parse_alipay(&b, gbk, len, err, sizeof(err)), -1);
	assert_string_equal(err, "文件不是 GBK 编码");
	free(gbk);
	free(text);
}

static void
test_alipay_bill_invalid(void **state)
{
	struct bill b;
	char err[256], *gbk, *text;
	size_t len;

	/* The UTF-8 file as such is not GBK of an Alipay bill: its header does
	 * not read as one. */
	assert_int_equal(bill_parse_alipay(&b, alipay_utf8, strlen(alipay_utf8),
	                     err, sizeof(err)),
	    -1);
	assert_int_equal(b.n, 0);
	/* A WeChat bill is not an Alipay bill. */
	gbk = to_gbk(wechat_bill, &len);
	assert_int_equal(bill_parse_alipay(&b, gbk, len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "第1行"));
	free(gbk);
	/* Comments only. */
	gbk = to_gbk("#支付宝业务明细查询\n#导出时间\n", &len);
	assert_int_equal(bill_parse_alipay(&b, gbk, len, err, sizeof(err)), -1);
	free(gbk);
	/* A float-looking amount, a short row, a positive refund; a payment
	 * and a refund of 0.00 (found by tests/fuzz/fuzz_bill: a line's amount
	 * is positive, bill_line promises). */
	static const char *const rows[] = {
	    "T9,P9,交易,x,,,,,,,,1.5,1.5,0,0,0,0,0,,0,0,,0,0,",
	    "T9,P9,交易,x,,,,,,,,1.50",
	    "T9,P9,退款,x,,,,,,,,1.50,1.50,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,R9,0.00,0.00,",
	    "T9,P9,交易,x,,,,,,,,0.00,0.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.00,0.00,",
	    "T9,P9,退款,x,,,,,,,,0.00,0.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,R9,0.00,0.00,",
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		text = xasprintf("#c\n" ALIPAY_HEADER "\n%s\n", rows[i]);
		gbk = to_gbk(text, &len);
		assert_int_equal(bill_parse_alipay(&b, gbk, len, err,
		                     sizeof(err)),
		    -1);
		assert_non_null(strstr(err, "第3行"));
		free(gbk);
		free(text);
	}
}

static void
test_wechat_bill(void **state)
{
	struct bill b;
	char err[256] = "";

	assert_int_equal(bill_parse_wechat(&b, wechat_bill, strlen(wechat_bill),
	                     err, sizeof(err)),
	    0);
	assert_int_equal(b.n, 3);
	assert_int_equal(b.lines[0].kind, BILL_PAYMENT);
	assert_string_equal(b.lines[0].out_trade_no, "W1");
	assert_string_equal(b.lines[0].provider_no,
	    "4200000001202405011111111111");
	assert_int_equal(b.lines[0].amount_fen, 65000);
	assert_int_equal(b.lines[1].kind, BILL_REFUND);
	assert_string_equal(b.lines[1].out_trade_no, "W1");
	assert_string_equal(b.lines[1].out_refund_no, "WR1");
	assert_string_equal(b.lines[1].provider_no,
	    "50000000012024050100000000001");
	assert_int_equal(b.lines[1].amount_fen, 10000);
	assert_int_equal(b.lines[2].amount_fen, 1);
	bill_clear(&b);

	/* UTF-8 BOM, LF line ends */
	char *bom = xasprintf("\xEF\xBB\xBF%s", wechat_bill);
	for (char *p = bom; (p = strstr(p, "\r\n")) != NULL;)
		memmove(p, p + 1, strlen(p));
	assert_int_equal(bill_parse_wechat(&b, bom, strlen(bom), err,
	                     sizeof(err)),
	    0);
	assert_int_equal(b.n, 3);
	bill_clear(&b);
	free(bom);
}

static void
test_wechat_bill_invalid(void **state)
{
	struct bill b;
	char err[256], *text;
	size_t len;

	/* No summary lines */
	const char *sum = strstr(wechat_bill, "总交易单数");
	text = xstrndup(wechat_bill, (size_t)(sum - wechat_bill));
	assert_int_equal(bill_parse_wechat(&b, text, strlen(text), err,
	                     sizeof(err)),
	    -1);
	free(text);
	/* A cell without its backtick splits wrong: 26 columns */
	text = xstrdup(wechat_bill);
	char *at = strstr(text, ",`W2");
	memmove(at + 1, at + 2, strlen(at + 2) + 1);
	assert_int_equal(bill_parse_wechat(&b, text, strlen(text), err,
	                     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "第4行"));
	free(text);
	/* An Alipay bill is not a WeChat bill */
	text = xstrdup(alipay_utf8);
	len = strlen(text);
	assert_int_equal(bill_parse_wechat(&b, text, len, err, sizeof(err)),
	    -1);
	free(text);
	/* A bad amount */
	text = xstrdup(wechat_bill);
	at = strstr(text, "`650.00,`0.00,`\r\n");
	memcpy(at, "`65O.00", 7);
	assert_int_equal(bill_parse_wechat(&b, text, strlen(text), err,
	                     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "第2行"));
	free(text);
	/* A payment and a refund of 0.00 (found by tests/fuzz/fuzz_bill) */
	text = xstrdup(wechat_bill);
	at = strstr(text, "`650.00,`0.00,`\r\n");
	memcpy(at, "`000.00", 7);
	memmove(at + 1, at + 3, strlen(at + 3) + 1);
	assert_int_equal(bill_parse_wechat(&b, text, strlen(text), err,
	                     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "第2行"));
	free(text);
	text = xstrdup(wechat_bill);
	at = strstr(text, "`100.00,`0.00,`ORIGINAL");
	memcpy(at, "`000.00", 7);
	memmove(at + 1, at + 3, strlen(at + 3) + 1);
	assert_int_equal(bill_parse_wechat(&b, text, strlen(text), err,
	                     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "第3行"));
	free(text);
}

/* What a streamed line carried (strings copied: they live for the call). */
struct seen_lines {
	size_t n;
	char out[4][80], refund[4][80], provider[4][80];
	int64_t amount[4];
};

static int
keep_emit(void *arg, const struct bill_line *l)
{
	struct seen_lines *k = arg;

	if (k->n == 4)
		return -1;
	snprintf(k->out[k->n], 80, "%s", l->out_trade_no);
	snprintf(k->refund[k->n], 80, "%s",
	    l->out_refund_no ? l->out_refund_no : "(null)");
	snprintf(k->provider[k->n], 80, "%s",
	    l->provider_no ? l->provider_no : "(null)");
	k->amount[k->n++] = l->amount_fen;
	return 0;
}

/* The raw path's split (eight bytes at a time, only the cells read
 * trimmed) and a streamed line's strings: spaces and TABs around the cells
 * read, commas at every place in a word, a provider number longer than a
 * short cell; a line of too many cells is still refused with its count. */
static void
test_alipay_stream_cells(void **state)
{
	struct seen_lines k = {0};
	char err[256] = "", *gbk, *text;
	size_t len, count;
	const char *long_no =
	    "20240501220014123456789012345678901234567890123456"
	    "78901234567890AB"; /* 66 characters */

	(void)state;
	text = xstrdup(alipay_utf8);
	char *at = strstr(text, "2024050122001422222222222222\t,P2\t,交易\t");
	assert_non_null(at);
	char *line_end = strstr(at, "\r\n");
	char *rest = xstrdup(line_end);
	char *line = xasprintf(
	    "  %s \t, \tP2 ,  交易\t,CA延期年检\t,2024-05-01 11:00:00\t,"
	    "2024-05-01 11:00:05\t,\t,\t,\t,\t,b2@example.com\t,\t 0.01 \t,0.01\t,"
	    "0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,"
	    "\t",
	    long_no);
	*at = '\0';
	char *joined = xasprintf("%s%s%s", text, line, rest);
	gbk = to_gbk(joined, &len);
	assert_int_equal(bill_stream_alipay(gbk, len, keep_emit, &k, &count,
	                     err, sizeof(err)),
	    0);
	assert_int_equal(count, 3);
	assert_string_equal(k.out[1], "P2");
	assert_string_equal(k.provider[1], long_no);
	assert_string_equal(k.refund[1], "(null)");
	assert_int_equal(k.amount[1], 1);
	assert_string_equal(k.out[2], "P1");
	assert_string_equal(k.refund[2], "R1");
	assert_string_equal(k.provider[2], "2024050122001411111111111111");
	assert_int_equal(k.amount[2], 10000);
	free(gbk);
	free(joined);
	free(line);
	/* 70 cells: refused, counted as the converting path counts */
	char *many = xstrdup("");
	for (int i = 0; i < 69; i++) {
		char *m = xasprintf("%s%d,", many, i);
		free(many);
		many = m;
	}
	joined = xasprintf("%s%s%s", text, many, rest);
	gbk = to_gbk(joined, &len);
	assert_int_equal(bill_stream_alipay(gbk, len, keep_emit, &k, &count,
	                     err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "应有25列"));
	free(gbk);
	free(joined);
	free(many);
	free(rest);
	free(text);
}

/* A reader handing out at most piece bytes at a time. */
struct pieces {
	const char *p;
	size_t left, piece;
};

static long
pieces_read(void *arg, char *buf, size_t size)
{
	struct pieces *r = arg;
	size_t n = r->left < r->piece ? r->left : r->piece;

	if (n > size)
		n = size;
	memcpy(buf, r->p, n);
	r->p += n;
	r->left -= n;
	return (long)n;
}

static int
count_emit(void *arg, const struct bill_line *l)
{
	int64_t *sum = arg;

	*sum += l->amount_fen;
	return 0;
}

/* The read parses give what the in-memory ones give, whatever the pieces
 * (lines, CRLFs and GBK characters cut between them), and their errors. */
static void
test_bill_read_pieces(void **state)
{
	char err[256] = "", *gbk;
	size_t len, n;
	int64_t sum;

	gbk = to_gbk(alipay_utf8, &len);
	for (size_t piece = 1; piece < 40; piece += 3) {
		struct pieces r = {gbk, len, piece};
		sum = 0;
		assert_int_equal(bill_read_alipay(pieces_read, &r, count_emit,
		                     &sum, &n, err, sizeof(err)),
		    0);
		assert_int_equal(n, 3);
		assert_int_equal(sum, 65000 + 1 + 10000);
	}
	free(gbk);
	for (size_t piece = 1; piece < 40; piece += 3) {
		struct pieces r = {wechat_bill, strlen(wechat_bill), piece};
		sum = 0;
		assert_int_equal(bill_read_wechat(pieces_read, &r, count_emit,
		                     &sum, &n, err, sizeof(err)),
		    0);
		assert_int_equal(n, 3);
		assert_int_equal(sum, 65000 + 10000 + 1);
	}
	/* a NUL byte in a later piece */
	char *nul = xasprintf("%s", wechat_bill);
	nul[strlen(nul) - 3] = '\0';
	struct pieces r = {nul, strlen(wechat_bill), 64};
	assert_int_equal(bill_read_wechat(pieces_read, &r, count_emit, &sum, &n,
	                     err, sizeof(err)),
	    -1);
	assert_string_equal(err, "文件不是 UTF-8 文本");
	free(nul);
	/* no header */
	struct pieces e = {"a\nb\n", 4, 2};
	assert_int_equal(bill_read_wechat(pieces_read, &e, count_emit, &sum, &n,
	                     err, sizeof(err)),
	    -1);
}

static void
test_recon(void **state)
{
	struct bill b;
	struct recon_counts c;
	char err[256];
	json_t *items;

	assert_int_equal(bill_parse_wechat(&b, wechat_bill, strlen(wechat_bill),
	                     err, sizeof(err)),
	    0);
	/* W1 matches, refund WR1 has another amount, W2 is not ours, W3 is
	 * ours but not in the bill. */
	const struct recon_local local[] = {
	    {BILL_PAYMENT, "W3", "4200000009", 500},
	    {BILL_REFUND, "WR1", "5000000001", 9000},
	    {BILL_PAYMENT, "W1", "4200000001202405011111111111", 65000},
	};
	items = recon_compare(&b, local, ARRAY_LEN(local), &c);
	assert_int_equal(c.matched, 1);
	assert_int_equal(c.amount_mismatch, 1);
	assert_int_equal(c.missing_local, 1);
	assert_int_equal(c.missing_remote, 1);
	assert_int_equal(json_array_size(items), 3);
	json_t *mm = json_array_get(items, 0);
	assert_string_equal(json_string_value(json_object_get(mm, "kind")),
	    "amount_mismatch");
	assert_string_equal(json_string_value(json_object_get(mm, "type")),
	    "refund");
	assert_string_equal(json_string_value(
	                        json_object_get(mm, "out_trade_no")),
	    "WR1");
	assert_int_equal(json_integer_value(
	                     json_object_get(mm, "local_amount_fen")),
	    9000);
	assert_int_equal(json_integer_value(
	                     json_object_get(mm, "remote_amount_fen")),
	    10000);
	json_t *ml = json_array_get(items, 1);
	assert_string_equal(json_string_value(json_object_get(ml, "kind")),
	    "missing_local");
	assert_string_equal(json_string_value(
	                        json_object_get(ml, "out_trade_no")),
	    "W2");
	assert_true(json_is_null(json_object_get(ml, "local_amount_fen")));
	json_t *mr = json_array_get(items, 2);
	assert_string_equal(json_string_value(json_object_get(mr, "kind")),
	    "missing_remote");
	assert_string_equal(json_string_value(
	                        json_object_get(mr, "out_trade_no")),
	    "W3");
	json_decref(items);

	/* Everything matches; an empty bill against nothing local. */
	const struct recon_local all[] = {
	    {BILL_PAYMENT, "W1", NULL, 65000},
	    {BILL_REFUND, "WR1", NULL, 10000},
	    {BILL_PAYMENT, "W2", NULL, 1},
	};
	items = recon_compare(&b, all, ARRAY_LEN(all), &c);
	assert_int_equal(c.matched, 3);
	assert_int_equal(json_array_size(items), 0);
	json_decref(items);
	bill_clear(&b);
	items = recon_compare(&b, NULL, 0, &c);
	assert_int_equal(c.matched + c.missing_local + c.missing_remote +
	        c.amount_mismatch,
	    0);
	json_decref(items);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alipay_bill),
	    cmocka_unit_test(test_alipay_bill_invalid),
	    cmocka_unit_test(test_alipay_bill_raw_and_converted),
	    cmocka_unit_test(test_alipay_stream_cells),
	    cmocka_unit_test(test_wechat_bill),
	    cmocka_unit_test(test_wechat_bill_invalid),
	    cmocka_unit_test(test_bill_read_pieces),
	    cmocka_unit_test(test_recon),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
