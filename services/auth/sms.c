/* sms — one-time SMS codes: generated here, kept in Redis only as an HMAC,
 * rate-limited per phone and per client address, checked at most
 * sms_max_tries times, and handed to the SMS provider (common/sms.h). */
#include "auth.h"

#include "crypto.h"
#include "kv.h"
#include "log.h"
#include "sms.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rate limits and the new code's hash, atomically: {0,0} sent,
 * {1,ttl} too soon after the last send, {2,0} a daily cap is reached. */
static const char sms_send_lua[] =
    "local ttl = redis.call('TTL', KEYS[1]) "
    "if ttl > 0 then return {1, ttl} end "
    "local np = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "local ni = tonumber(redis.call('GET', KEYS[3]) or '0') "
    "if np >= tonumber(ARGV[4]) or ni >= tonumber(ARGV[5]) then return {2, 0} end "
    "redis.call('SET', KEYS[1], '1', 'EX', ARGV[3]) "
    "redis.call('INCR', KEYS[2]) redis.call('EXPIRE', KEYS[2], 86400) "
    "redis.call('INCR', KEYS[3]) redis.call('EXPIRE', KEYS[3], 86400) "
    "redis.call('DEL', KEYS[4]) "
    "redis.call('HSET', KEYS[4], 'h', ARGV[1], 't', 0) "
    "redis.call('EXPIRE', KEYS[4], ARGV[2]) "
    "return {0, 0}";

/* 1 when the code matches (and is consumed); 0 otherwise, counting a try
 * and deleting the code at the last one. */
static const char sms_check_lua[] =
    "local h = redis.call('HGET', KEYS[1], 'h') "
    "if not h then return 0 end "
    "if h == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end "
    "local t = redis.call('HINCRBY', KEYS[1], 't', 1) "
    "if t >= tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) end "
    "return 0";

struct sms_op {
	struct http_req *req;
	sms_sent_fn sent;
	sms_checked_fn checked;
	char phone[16];
	char purpose[16];
	char code[8];
};

static void
sms_code_hash(const char *phone, const char *purpose, const char *code,
    char out[65])
{
	unsigned char mac[32];
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%s:%s:%s", purpose, phone, code);

	crypto_hmac_sha256(auth.cfg.sms_secret, strlen(auth.cfg.sms_secret),
	    msg, (size_t)n, mac);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
	crypto_wipe(msg, sizeof(msg));
}

void
sms_notify(const char *phone, const char *text)
{
	sms_provider_send(phone, text);
}

static void
sms_code_on_delivered(void *arg, const struct sms_status *st)
{
	if (st->outcome != SMS_SENT)
		log_warn(NULL, "msg=sms_code_not_delivered code=%s", st->code);
}

static void
sms_on_sent(void *arg, const struct kv_reply *reply)
{
	struct sms_op *op = arg;
	struct http_req *req = op->req;
	enum sms_result r = SMS_UNAVAILABLE;
	long retry = 0;

	if (reply != NULL && kv_reply_type(reply) == KV_ARRAY &&
	    kv_reply_count(reply) == 2) {
		long long status = kv_reply_int(kv_reply_elem(reply, 0));
		retry = (long)kv_reply_int(kv_reply_elem(reply, 1));
		r = status == 0   ? SMS_OK
		    : status == 1 ? SMS_TOO_FREQUENT
		                  : SMS_DAILY_CAP;
	}
	if (r == SMS_OK) {
		char text[96], params[48];
		snprintf(text, sizeof(text), "purpose=%s code=%s", op->purpose,
		    op->code);
		snprintf(params, sizeof(params), "{\"code\":\"%s\"}", op->code);
		const struct sms_message m = {op->phone, "otp", params, text,
		    NULL};
		sms_deliver(&m, sms_code_on_delivered, NULL);
		crypto_wipe(text, sizeof(text));
		crypto_wipe(params, sizeof(params));
		char masked[16];
		log_mask_id(op->phone, masked, sizeof(masked));
		log_info(req->id, "msg=sms_sent phone=%s purpose=%s", masked,
		    op->purpose);
	}
	crypto_wipe(op->code, sizeof(op->code));
	sms_sent_fn cb = op->sent;
	free(op);
	cb(req, r, retry);
}

static void
sms_today(char out[9])
{
	time_t t = time(NULL) + 8 * 3600; /* the day in Asia/Shanghai */
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 9, "%Y%m%d", &tm);
}

void
sms_send(struct http_req *req, const char *phone, const char *purpose,
    sms_sent_fn cb)
{
	struct sms_op *op = xcalloc(1, sizeof(*op));
	struct store_sms_keys k;
	char hash[65], day[9];
	char ttl[24], cooldown[16], cap_phone[16], cap_ip[16];
	uint32_t x;

	op->req = req;
	op->sent = cb;
	snprintf(op->phone, sizeof(op->phone), "%s", phone);
	snprintf(op->purpose, sizeof(op->purpose), "%s", purpose);
	do /* uniform over 000000..999999 */
		crypto_random_bytes(&x, sizeof(x));
	while (x >= 4294000000u);
	snprintf(op->code, sizeof(op->code), "%06u", x % 1000000u);
	sms_code_hash(phone, purpose, op->code, hash);
	sms_today(day);
	store_sms_keys(&k, phone, purpose, day, req->peer);
	snprintf(ttl, sizeof(ttl), "%ld", auth.cfg.sms_ttl);
	snprintf(cooldown, sizeof(cooldown), "%ld", auth.cfg.sms_cooldown);
	snprintf(cap_phone, sizeof(cap_phone), "%ld", auth.cfg.sms_daily_phone);
	snprintf(cap_ip, sizeof(cap_ip), "%ld", auth.cfg.sms_daily_ip);
	const char *argv[] = {"EVAL", sms_send_lua, "4", k.last, k.day,
	    k.day_ip, k.code, hash, ttl, cooldown, cap_phone, cap_ip};
	kv_command(auth.svc.kv, sms_on_sent, op, (int)ARRAY_LEN(argv), argv,
	    NULL);
}

static void
sms_on_checked(void *arg, const struct kv_reply *reply)
{
	struct sms_op *op = arg;
	struct http_req *req = op->req;
	sms_checked_fn cb = op->checked;
	enum sms_result r;

	if (reply == NULL || kv_reply_type(reply) != KV_INT)
		r = SMS_UNAVAILABLE; /* the caller's reply counts the error */
	else
		r = kv_reply_int(reply) == 1 ? SMS_OK : SMS_INVALID;
	free(op);
	cb(req, r);
}

void
sms_check(struct http_req *req, const char *phone, const char *purpose,
    const char *code, sms_checked_fn cb)
{
	struct sms_op *op;
	char hash[65], k_code[64], tries[24];

	if (strlen(code) != 6 || strspn(code, "0123456789") != 6) {
		cb(req, SMS_INVALID);
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->req = req;
	op->checked = cb;
	sms_code_hash(phone, purpose, code, hash);
	store_sms_code_key(k_code, sizeof(k_code), phone, purpose);
	snprintf(tries, sizeof(tries), "%ld", auth.cfg.sms_max_tries);
	const char *argv[] = {"EVAL", sms_check_lua, "1", k_code, hash, tries};
	kv_command(auth.svc.kv, sms_on_checked, op, (int)ARRAY_LEN(argv), argv,
	    NULL);
}
