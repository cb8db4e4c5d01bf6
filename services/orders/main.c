/* caplat-orders — certificate renewal eligibility, the platform catalogue
 * and its prices, quotes and renewal orders. main() is thin: configuration,
 * the shared service start-up (svc), routes, metrics, consumers, the expiry
 * sweep, run.
 *
 *   caplat-orders [--workers N]          serve
 *   caplat-orders migrate                apply migrations (and the seed
 *                                        catalogue) and exit */
#include "orders.h"

#include "cfg.h"
#include "log.h"
#include "util.h"

static void
orders_load_config(void)
{
	struct orders_config *c = &orders.cfg;
	const struct cfg_var vars[] = {
	    {"CAPLAT_ORDER_TTL", CFG_INT, "1800", 10, 7 * 86400, &c->order_ttl,
	        "seconds an unpaid order waits for payment"},
	    {"CAPLAT_ORDER_SWEEP_SECONDS", CFG_INT, "10", 1, 3600,
	        &c->sweep_seconds, "period of the expiry sweep (s)"},
	    {"CAPLAT_ORDER_SWEEP_IDLE_SECONDS", CFG_INT, "60", 1, 86400,
	        &c->sweep_idle_seconds,
	        "the expiry sweep's longest rest while no order is due (s)"},
	    {"CAPLAT_ORDER_CATALOGUE_CACHE_MS", CFG_INT, "2000", 0, 3600000,
	        &c->catalogue_cache_ms,
	        "GET /platforms answers from memory this long at most (0: "
	        "off); a price set here ends it at once"},
	    {"CAPLAT_QUOTE_TTL", CFG_INT, "1800", 10, 7 * 86400, &c->quote_ttl,
	        "seconds a quote keeps its prices"},
	    {"CAPLAT_DIGEST_QUOTE_TTL", CFG_INT, "604800", 10, 30 * 86400,
	        &c->digest_quote_ttl,
	        "seconds the quote of an expiry digest keeps its prices"},
	    {"CAPLAT_DIGEST_GATHER_SECONDS", CFG_INT, "600", 0, 86400,
	        &c->digest_gather_seconds,
	        "an enterprise's digest waits this long after its first expiring certificate"},
	    {"CAPLAT_ORDER_EXPIRING_NOTICE_SECONDS", CFG_INT, "600", 0,
	        7 * 86400, &c->order_expiring_notice_seconds,
	        "an unpaid order is told this long before it expires, 0: never"},
	    {"CAPLAT_RENEWAL_WINDOW_BEFORE_DAYS", CFG_INT, "90", 0, 3650,
	        &c->window.before_days,
	        "renewable from this many days before notAfter"},
	    {"CAPLAT_RENEWAL_WINDOW_AFTER_DAYS", CFG_INT, "365", 0, 3650,
	        &c->window.after_days,
	        "renewable until this many days after notAfter"},
	};

	cfg_load_or_die(vars, ARRAY_LEN(vars));
	idem_config_load(&c->idem);
}

int
main(int argc, char **argv)
{
	orders_load_config();
	svc_init(&orders.svc, "orders", argc, argv);
	http_server_routes(orders.svc.http, orders_routes, orders_nroutes);
	http_server_add_metrics(orders.svc.http, orders_metrics, NULL);
	orders_events_subscribe();
	order_sweep_start();
	log_info(NULL,
	    "msg=orders_ready order_ttl=%ld sweep_seconds=%ld window=-%ld/+%ld",
	    orders.cfg.order_ttl, orders.cfg.sweep_seconds,
	    orders.cfg.window.before_days, orders.cfg.window.after_days);
	svc_run(&orders.svc);
	order_sweep_stop();
	svc_free(&orders.svc);
	return 0;
}
