/* domain — the pure parts of payments, no I/O, each unit-tested with cmocka:
 * money (yuan strings ↔ fen, VAT), Alipay (form notifications, RSA2 sign
 * content, signed requests and answers), WeChat Pay API v3 (signed messages,
 * Authorization header, AEAD_AES_256_GCM resources, platform certificates),
 * the providers' daily bills and the reconciliation against local records.
 * DOMAIN.md §3, §4 and §5 are the rules. */
#ifndef CAPLAT_PAYMENTS_DOMAIN_H
#define CAPLAT_PAYMENTS_DOMAIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct crypto_key;

/* ---- money.c ---------------------------------------------------------- */

/* Largest amount handled, in fen (JSON-safe integer). */
#define MONEY_MAX_FEN 9007199254740991LL

/* Parses a yuan string with exactly two decimals ("0.01", "1234.50", and
 * "-0.50" when allow_negative) of len bytes into fen, exactly (no float):
 * digits, one '.', two digits, no spaces, no '+', no leading zeros but a
 * single "0". Returns 0 and sets *fen, or -1 (nothing set). */
int money_yuan_to_fen(const char *s, size_t len, int allow_negative,
    int64_t *fen);

/* Writes fen as a yuan string with two decimals ("0.01", "-3.00") into out. */
void money_fen_to_yuan(int64_t fen, char out[32]);

/* The VAT inside a tax-inclusive gross amount, DOMAIN.md §5:
 * round_half_up(gross × r / (1 + r)) with r = rate_bp / 10000 (600 = 6 %),
 * in integer arithmetic. A negative gross (red-letter) gives the negated tax
 * of its absolute value. rate_bp in [0, 10000]. */
int64_t money_vat_tax(int64_t gross_fen, long rate_bp);

/* One invoice line's split: gross (tax-inclusive), its VAT, net = gross −
 * tax. */
struct money_split {
	int64_t gross, tax, net;
};

/* An invoice's lines per DOMAIN.md §5: each line's tax is
 * money_vat_tax(its gross), net the rest; *total holds the sums of the
 * lines (not the tax of the summed gross). out may be NULL. */
void money_lines_vat(const int64_t *gross, size_t n, long rate_bp,
    struct money_split *out, struct money_split *total);

/* ---- alipay.c --------------------------------------------------------- */

struct alipay_param {
	char *key;   /* decoded, owned */
	char *value; /* decoded, owned */
};

/* A decoded application/x-www-form-urlencoded body. */
struct alipay_form {
	struct alipay_param *params;
	size_t n;
};

/* 1 when s is exactly "yyyy-MM-dd" sep "HH:mm:ss" with every field in range
 * (month 01-12, day 01-31, hour 00-23, minute and second 00-59). */
int pay_datetime_ok(const char *s, char sep);
/* Alipay's gmt_payment / send_pay_date, Beijing time "2024-05-01 10:00:05",
 * as a PostgreSQL timestamptz literal "2024-05-01 10:00:05+08" (to free);
 * NULL when s is missing or not that form (the caller then takes now()). */
char *alipay_time_timestamptz(const char *s);

/* Decodes a form body ('+' is a space, %XX escapes) into out. Returns 0, or
 * -1 on a malformed escape, an empty key, a NUL byte or a repeated key (out
 * then empty). Release with alipay_form_clear(). */
int alipay_form_parse(struct alipay_form *out, const char *body, size_t len);
void alipay_form_clear(struct alipay_form *f);
/* The decoded value of key, borrowed, or NULL. */
const char *alipay_form_get(const struct alipay_form *f, const char *key);

/* The signed content of a notification: every parameter but "sign" and
 * "sign_type", sorted by key in byte order, joined "k=v&k=v" with the decoded
 * values, empty values kept. Returns a new string, caller frees. */
char *alipay_sign_content(const struct alipay_form *f);

enum alipay_verify_result {
	ALIPAY_VERIFY_OK,
	ALIPAY_VERIFY_NO_SIGN,       /* sign missing or not base64 */
	ALIPAY_VERIFY_BAD_SIGN_TYPE, /* sign_type is not "RSA2" */
	ALIPAY_VERIFY_BAD_SIGNATURE, /* SHA256withRSA does not verify */
};

/* Verifies a notification with Alipay's public key (RSA2 = SHA256withRSA,
 * PKCS#1 v1.5) over alipay_sign_content(). */
enum alipay_verify_result alipay_verify(const struct alipay_form *f,
    const struct crypto_key *alipay_public);

/* Builds a signed open-platform request: the parameters (key, value pairs,
 * NULL-terminated; values raw, "sign" absent) are signed RSA2 with the
 * merchant's private key over the same sorted "k=v&…" content, then the
 * whole set including "sign" is form-encoded. Returns a new string (caller
 * frees), or NULL when signing fails. */
char *alipay_request_body(const struct crypto_key *merchant,
    const char *const *kv);

/* Finds, in an open-platform answer, the raw JSON text of the object named
 * "<method with '.' as '_'>_response" (the signed bytes) and the "sign"
 * string. Sets *content and *content_len (borrowed from body) and *sign (borrowed
 * from *root, which the caller decrefs) and returns 0; -1 when absent or
 * malformed. */
int alipay_response_split(const char *body, size_t len, const char *method,
    const char **content, size_t *content_len, json_t **root,
    const char **sign);

/* Verifies an answer's sign over its raw content with Alipay's key: 0 or -1. */
int alipay_response_verify(const struct crypto_key *alipay_public,
    const char *content, size_t content_len, const char *sign_b64);

/* ---- wechat.c --------------------------------------------------------- */

/* The signed message of a notification or an answer:
 * timestamp "\n" nonce "\n" body "\n" (body as received). New string. */
char *wechat_message(const char *timestamp, const char *nonce, const char *body,
    size_t body_len);

/* Verifies the base64 signature of wechat_message() with the platform key:
 * 0 or -1. */
int wechat_verify(const struct crypto_key *platform, const char *timestamp,
    const char *nonce, const char *body, size_t body_len,
    const char *signature_b64);

/* 1 when timestamp is a decimal number of seconds with |now − ts| < 300. */
int wechat_timestamp_fresh(const char *timestamp, time_t now);
/* 1 when s is WeChat Pay's success_time form: RFC 3339 with an offset,
 * "2024-05-01T10:00:05+08:00" (or Z, optional fraction). */
int wechat_time_valid(const char *s);

/* Decrypts a notification "resource" object (algorithm AEAD_AES_256_GCM,
 * ciphertext base64 with the tag last, nonce 12 bytes, associated_data
 * optional) with the 32-byte APIv3 key. Sets *plain (new, NUL-terminated,
 * caller frees) and returns 0, or -1 when malformed or the tag fails. */
int wechat_decrypt_resource(json_t *resource, const char *apiv3_key,
    char **plain, size_t *plain_len);

/* The Authorization header of a request we send: signs
 * METHOD "\n" url "\n" ts "\n" nonce "\n" body "\n" (url = path and query,
 * body "" for GET) with the merchant key and returns a new string
 * 'WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",
 * serial_no="…",signature="…"', or NULL when signing fails. */
char *wechat_authorization(const struct crypto_key *merchant, const char *mchid,
    const char *serial_no, const char *method, const char *url,
    const char *timestamp, const char *nonce, const char *body);

/* The platform certificates, chosen by serial. */
struct wechat_platform_certs;

/* Loads every certificate of a PEM bundle; serials compare case-insensitive.
 * Sets *out (caller frees with wechat_platform_certs_free()) and returns the
 * number loaded, or -1 on a bad certificate or none. */
int wechat_platform_certs_load_pem(struct wechat_platform_certs **out,
    const char *pem);
void wechat_platform_certs_free(struct wechat_platform_certs *c);
/* The key of the certificate with this serial (borrowed) or NULL. */
const struct crypto_key *
wechat_platform_key(const struct wechat_platform_certs *c, const char *serial);

/* ---- bill.c ----------------------------------------------------------- */

enum bill_kind { BILL_PAYMENT, BILL_REFUND };

struct bill_line {
	enum bill_kind kind;
	char *out_trade_no; /* 商户订单号 (the payment's) */
	char *
	    out_refund_no; /* 商户退款单号 / 退款批次号, refunds only, else NULL */
	char
	    *provider_no; /* 支付宝交易号 / 微信订单号 (refund: 微信退款单号) */
	int64_t amount_fen; /* positive, for payments and refunds alike */
};

/* A line handed to bill.emit: borrowed for the call. Returns 0 to go on,
 * anything else stops the parse (with err as the emitter left it). */
typedef int (*bill_emit_fn)(void *arg, const struct bill_line *l);

struct bill {
	struct bill_line *lines;
	size_t n; /* lines parsed (stored, or emitted) */
	/* When emit is set, each line goes to emit as it is parsed and none is
	 * stored: a bill of any size in memory of one line (reconciliation at
	 * 10⁶ lines, finance.c). */
	bill_emit_fn emit;
	void *emit_arg;
};

/* Parses an Alipay 业务明细 bill (GBK, converted line by line, '#' comments, 25-column header, cells
 * trimmed of spaces and TABs; 业务类型 交易 or 退款, refund amounts negative).
 * Returns 0, or -1 with the reason (naming the line) in err. */
int bill_parse_alipay(struct bill *out, const char *data, size_t len, char *err,
    size_t err_size);
/* Parses a WeChat Pay 交易账单 (UTF-8, 27-column header, every data cell
 * prefixed with '`', two summary lines; 交易状态 SUCCESS or REFUND). */
int bill_parse_wechat(struct bill *out, const char *data, size_t len, char *err,
    size_t err_size);
void bill_clear(struct bill *b);
/* The same parses, each line handed to emit as it is parsed, none stored
 * (memory of one line whatever the bill's size); *count: the lines. */
int bill_stream_alipay(const char *data, size_t len, bill_emit_fn emit,
    void *arg, size_t *count, char *err, size_t err_size);
int bill_stream_wechat(const char *data, size_t len, bill_emit_fn emit,
    void *arg, size_t *count, char *err, size_t err_size);
/* Reads up to size bytes into buf; returns how many (0 at the end), or -1. */
typedef long (*bill_read_fn)(void *arg, char *buf, size_t size);
/* The same streamed parses with the bytes from rd, a piece (256 KiB) at a
 * time: the bill itself is never whole in memory. */
int bill_read_alipay(bill_read_fn rd, void *rd_arg, bill_emit_fn emit,
    void *arg, size_t *count, char *err, size_t err_size);
int bill_read_wechat(bill_read_fn rd, void *rd_arg, bill_emit_fn emit,
    void *arg, size_t *count, char *err, size_t err_size);

/* A local record of the day: a succeeded payment or refund. */
struct recon_local {
	enum bill_kind kind;
	const char *out_no; /* payment: out_trade_no; refund: out_refund_no */
	const char *provider_no; /* may be NULL */
	int64_t amount_fen;
};

struct recon_counts {
	long matched, missing_local, missing_remote, amount_mismatch;
};

/* Matches the bill's lines with the local records by our number (payments
 * by out_trade_no, refunds by out_refund_no) and kind. Fills counts and
 * returns a new JSON array of discrepancies (ReconciliationItem of
 * proto/openapi.yaml), matched lines only counted. */
json_t *recon_compare(const struct bill *b, const struct recon_local *local,
    size_t nlocal, struct recon_counts *counts);

#endif
