/* fuzz_alipay — what payments reads from Alipay: a notification's form
 * body (alipay_form_parse, the sign content, alipay_verify with an RSA key,
 * the yuan amount as notify.c reads it) and an open-platform answer
 * (alipay_response_split, alipay_response_verify). The whole input is
 * tried as both. */
#include "fuzz.h"

#include "../../services/payments/domain.h"
#include "crypto.h"

static struct crypto_key *alipay_key;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (crypto_key_generate(&alipay_key, CRYPTO_KEY_RSA) != 0)
		abort();
	return 0;
}

static void
form(const uint8_t *data, size_t size)
{
	struct alipay_form f;
	const char *amount;
	int64_t fen;
	char *content;

	if (alipay_form_parse(&f, (const char *)data, size) != 0) {
		FUZZ_CHECK(f.n == 0 && f.params == NULL);
		return;
	}
	for (size_t i = 0; i < f.n; i++) {
		FUZZ_CHECK(f.params[i].key[0] != '\0');
		FUZZ_CHECK(
		    alipay_form_get(&f, f.params[i].key) == f.params[i].value);
	}
	content = alipay_sign_content(&f);
	FUZZ_CHECK(content != NULL);
	free(content);
	alipay_verify(&f, alipay_key);
	amount = alipay_form_get(&f, "total_amount");
	if (amount != NULL &&
	    money_yuan_to_fen(amount, strlen(amount), 0, &fen) == 0) {
		char back[32];
		FUZZ_CHECK(fen >= 0 && fen <= MONEY_MAX_FEN);
		money_fen_to_yuan(fen, back);
		FUZZ_CHECK(strcmp(back, amount) == 0);
	}
	alipay_form_clear(&f);
}

static void
answer(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data, *content, *sign;
	size_t content_len;
	json_t *root;

	if (alipay_response_split(body, size, "alipay.trade.query", &content,
	        &content_len, &root, &sign) != 0)
		return;
	FUZZ_CHECK(content >= body && content + content_len <= body + size);
	FUZZ_CHECK(content_len >= 2 && content[0] == '{');
	FUZZ_CHECK(root != NULL && sign != NULL);
	alipay_response_verify(alipay_key, content, content_len, sign);
	json_decref(root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	form(data, size);
	answer(data, size);
	return 0;
}
