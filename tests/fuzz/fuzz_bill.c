/* fuzz_bill — the providers' daily bills payments downloads and parses
 * (bill_parse_alipay: GBK CSV with '#' comments; bill_parse_wechat: UTF-8
 * with '`'-prefixed cells), then reconciled against no local records. A
 * parsed line has its numbers and a positive amount; a refusal says why. */
#include "fuzz.h"

#include "../../services/payments/domain.h"

static void
check(int rc, struct bill *b, const char *err)
{
	struct recon_counts counts;
	json_t *items;

	if (rc != 0) {
		FUZZ_CHECK(err[0] != '\0');
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct bill_line *l = &b->lines[i];
		FUZZ_CHECK(l->out_trade_no != NULL && l->provider_no != NULL);
		FUZZ_CHECK(l->amount_fen > 0 && l->amount_fen <= MONEY_MAX_FEN);
		FUZZ_CHECK(l->kind == BILL_PAYMENT || l->out_refund_no != NULL);
	}
	items = recon_compare(b, NULL, 0, &counts);
	FUZZ_CHECK(items != NULL && counts.missing_local == (long)b->n);
	json_decref(items);
	bill_clear(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bill b;
	char err[256];
	int rc;

	memset(&b, 0, sizeof(b));
	err[0] = '\0';
	rc = bill_parse_alipay(&b, (const char *)data, size, err, sizeof(err));
	check(rc, &b, err);
	memset(&b, 0, sizeof(b));
	err[0] = '\0';
	rc = bill_parse_wechat(&b, (const char *)data, size, err, sizeof(err));
	check(rc, &b, err);
	return 0;
}
