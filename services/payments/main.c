/* caplat-payments — payments of orders by Alipay and WeChat Pay, the
 * providers' signed notifications, invoices, refunds and reconciliation.
 * main() is thin: configuration, the shared start-up (svc), provider keys,
 * routes, consumers, the sweeper, run.
 *
 *   caplat-payments [--workers N]     serve
 *   caplat-payments migrate           apply migrations and exit */
#include "payments.h"

#include "cfg.h"
#include "util.h"

static void
pay_load_config(void)
{
	struct pay_config *c = &pay.cfg;
	const struct cfg_var vars[] = {
	    {"CAPLAT_PAY_NOTIFY_BASE", CFG_STR, "http://127.0.0.1:8080", 0, 0,
	        &c->notify_base,
	        "public base URL of /notify/alipay and /notify/wechat"},
	    {"CAPLAT_VAT_RATE_BP", CFG_INT, "600", 0, 10000, &c->vat_rate_bp,
	        "VAT rate in basis points (600 = 6 %)"},
	    {"CAPLAT_PAY_QUERY_DELAY", CFG_INT, "60", 1, 86400, &c->query_delay,
	        "seconds before a pending payment is queried at the provider"},
	    {"CAPLAT_PAY_EXPIRE", CFG_INT, "7200", 10, 7 * 86400,
	        &c->pay_expire,
	        "seconds after which an unpaid payment is closed"},
	    {"CAPLAT_PAY_SWEEP_MS", CFG_INT, "2000", 50, 600000, &c->sweep_ms,
	        "least time between two rounds of a sweep (ms)"},
	    {"CAPLAT_PAY_IDLE_MS", CFG_INT, "60000", 50, 3600000, &c->idle_ms,
	        "most time a sweep rests when nothing of its own falls due "
	        "sooner (ms): the look for what another process left"},
	    {"CAPLAT_PAY_PROVIDER_TIMEOUT", CFG_INT, "10", 1, 120,
	        &c->provider_timeout, "seconds per provider request"},
	    {"CAPLAT_INVOICE_LATE_DAYS", CFG_INT, "90", 1, 3650,
	        &c->invoice_late_days,
	        "days after payment within which an invoice may be requested "
	        "for an order paid without one (补开)"},
	    {"CAPLAT_TAXPLAT_URL", CFG_STR, "", 0, 0, &c->taxplat_url,
	        "数电票 tax platform API base URL; empty: the local provider "
	        "(numbers only, no file)"},
	    {"CAPLAT_TAXPLAT_KEY", CFG_STR, "", 0, 0, &c->taxplat_key,
	        "file holding the tax platform's API key"},
	    {"CAPLAT_TAXPLAT_TIMEOUT", CFG_INT, "15", 1, 120,
	        &c->taxplat_timeout, "seconds per tax platform request"},
	    {"CAPLAT_INVOICE_RETRY_SECONDS", CFG_INT, "60", 1, 3600,
	        &c->invoice_retry_s,
	        "backoff base of invoice issuance retries (doubling, at most "
	        "an hour)"},
	    {"CAPLAT_INVOICE_MAX_ATTEMPTS", CFG_INT, "12", 1, 1000,
	        &c->invoice_max_attempts,
	        "issuance attempts before an invoice stays 开具失败"},
	    {"CAPLAT_INVOICE_REISSUE_MAX", CFG_INT, "2", 0, 100,
	        &c->reissue_max, "reissues (red + new blue) per payment"},
	    {"CAPLAT_INVOICE_REISSUE_DAYS", CFG_INT, "365", 1, 3650,
	        &c->reissue_days,
	        "days after the first invoice within which it may be "
	        "reissued"},
	    {"CAPLAT_SMTP_HOST", CFG_STR, "", 0, 0, &c->smtp_host,
	        "SMTP relay for invoice e-mails (IP or name); empty: no "
	        "e-mail"},
	    {"CAPLAT_SMTP_PORT", CFG_INT, "25", 1, 65535, &c->smtp_port,
	        "SMTP relay port"},
	    {"CAPLAT_SMTP_FROM", CFG_STR, "invoice@caplat.invalid", 0, 0,
	        &c->smtp_from, "envelope and header sender of invoice e-mails"},
	    {"CAPLAT_SMTP_HELO", CFG_STR, "caplat.invalid", 0, 0, &c->smtp_helo,
	        "the name we give in EHLO"},
	    {"CAPLAT_SMTP_TLS", CFG_STR, "none", 0, 0, &c->smtp_tls,
	        "none, starttls (required, the server's certificate "
	        "verified) or tls (implicit TLS, smtps)"},
	    {"CAPLAT_SMTP_USER", CFG_STR, "", 0, 0, &c->smtp_user,
	        "SMTP AUTH user; empty: no AUTH"},
	    {"CAPLAT_SMTP_PASSWORD_FILE", CFG_STR, "", 0, 0,
	        &c->smtp_password_file,
	        "file whose first line is the SMTP AUTH password"},
	    {"CAPLAT_SMTP_TIMEOUT", CFG_INT, "30", 1, 600, &c->smtp_timeout,
	        "seconds an SMTP conversation may take"},
	    {"CAPLAT_EMAIL_RETRY_SECONDS", CFG_INT, "60", 1, 3600,
	        &c->email_retry_s, "backoff base of e-mail retries"},
	    {"CAPLAT_EMAIL_MAX_ATTEMPTS", CFG_INT, "8", 1, 100,
	        &c->email_max_attempts,
	        "e-mail attempts before the delivery is failed"},
	    {"CAPLAT_ALIPAY_GATEWAY", CFG_STR, "", 0, 0, &c->alipay_gateway,
	        "Alipay gateway URL (…/gateway.do); empty disables Alipay"},
	    {"CAPLAT_ALIPAY_APP_ID", CFG_STR, "", 0, 0, &c->alipay_app_id,
	        "our Alipay app_id"},
	    {"CAPLAT_ALIPAY_SELLER_ID", CFG_STR, "", 0, 0, &c->alipay_seller_id,
	        "our Alipay PID (seller_id)"},
	    {"CAPLAT_ALIPAY_PRIVATE_KEY", CFG_STR, "", 0, 0,
	        &c->alipay_private_key, "merchant RSA private key (PEM file)"},
	    {"CAPLAT_ALIPAY_PUBLIC_KEY", CFG_STR, "", 0, 0,
	        &c->alipay_public_key, "Alipay's RSA public key (PEM file)"},
	    {"CAPLAT_WECHAT_API", CFG_STR, "", 0, 0, &c->wechat_api,
	        "WeChat Pay API base URL; empty disables WeChat Pay"},
	    {"CAPLAT_WECHAT_MCHID", CFG_STR, "", 0, 0, &c->wechat_mchid,
	        "our mchid"},
	    {"CAPLAT_WECHAT_APPID", CFG_STR, "", 0, 0, &c->wechat_appid,
	        "our appid"},
	    {"CAPLAT_WECHAT_SERIAL", CFG_STR, "", 0, 0, &c->wechat_serial,
	        "serial of our merchant API certificate"},
	    {"CAPLAT_WECHAT_PRIVATE_KEY", CFG_STR, "", 0, 0,
	        &c->wechat_private_key, "merchant RSA private key (PEM file)"},
	    {"CAPLAT_WECHAT_PLATFORM_CERTS", CFG_STR, "", 0, 0,
	        &c->wechat_platform_certs,
	        "WeChat Pay platform certificates (PEM bundle)"},
	    {"CAPLAT_WECHAT_APIV3_KEY_FILE", CFG_STR, "", 0, 0,
	        &c->wechat_apiv3_key_file,
	        "file holding the 32-byte APIv3 key"},
	};

	cfg_load_or_die(vars, ARRAY_LEN(vars));
	idem_config_load(&c->idem);
	c->idem_purge_ms = c->idem.purge_seconds * 1000;
}

int
main(int argc, char **argv)
{
	pay_load_config();
	svc_init(&pay.svc, "payments", argc, argv);
	provider_init();
	smtp_init();
	invoice_provider(); /* a bad CAPLAT_TAXPLAT_URL stops here */
	pay_routes_add();
	pay_events_subscribe();
	pay_sweep_start();
	svc_run(&pay.svc);
	pay_sweep_stop();
	provider_free();
	taxplat_free();
	svc_free(&pay.svc);
	return 0;
}
