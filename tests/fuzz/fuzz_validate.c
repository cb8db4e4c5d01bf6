/* fuzz_validate — the identifiers users type in (common/validate.c):
 * unified social credit codes, resident ID numbers, mobile numbers and
 * e-mail addresses. Whatever is accepted is written back normalized and
 * must itself be accepted again, unchanged. */
#include "fuzz.h"

#include "validate.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), out[19], again[19], mobile[12], m2[12];

	memcpy(s, data, size);
	s[size] = '\0';
	memset(out, 0x55, sizeof(out));
	if (validate_uscc(s, out) == 0) {
		FUZZ_CHECK(strlen(out) == 18);
		FUZZ_CHECK(
		    validate_uscc(out, again) == 0 && strcmp(out, again) == 0);
	}
	memset(out, 0x55, sizeof(out));
	if (validate_id_number(s, out) == 0) {
		FUZZ_CHECK(strlen(out) == 18);
		FUZZ_CHECK(validate_id_number(out, again) == 0 &&
		    strcmp(out, again) == 0);
	}
	memset(mobile, 0x55, sizeof(mobile));
	if (validate_mobile(s, mobile) == 0) {
		FUZZ_CHECK(strlen(mobile) == 11 && mobile[0] == '1');
		FUZZ_CHECK(validate_mobile(mobile, m2) == 0 &&
		    strcmp(mobile, m2) == 0);
	}
	if (validate_email(s) == 0) {
		FUZZ_CHECK(strlen(s) <= 254 && strchr(s, '@') != NULL);
		for (const char *p = s; *p; p++)
			FUZZ_CHECK((unsigned char)*p > 0x20 &&
			    (unsigned char)*p < 0x7f);
	}
	free(s);
	return 0;
}
