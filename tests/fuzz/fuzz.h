/* fuzz — what the libFuzzer harnesses of tests/fuzz share: splitting one
 * input into the several strings a parser takes, and a check that fails
 * loudly. Built only by `make fuzz` (clang -fsanitize=fuzzer). */
#ifndef CAPLAT_FUZZ_H
#define CAPLAT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken promise of the parser under test: report and crash, so that
 * libFuzzer keeps the input. */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			    __LINE__, #cond);                                  \
			abort();                                               \
		}                                                              \
	} while (0)

/* Splits data into n NUL-terminated fields at '\n' (the last field takes
 * the rest, newlines included; missing fields are ""). fields[i] point into
 * the returned buffer (caller frees); *last_len is the last field's length
 * in bytes, which may hold NULs. */
static inline char *
fuzz_split(const uint8_t *data, size_t size, char **fields, size_t n,
    size_t *last_len)
{
	char *buf = malloc(size + n + 1);
	size_t pos = 0, out = 0;

	if (buf == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t start = pos, len;
		if (i + 1 < n) {
			const uint8_t *nl = pos < size
			    ? memchr(data + pos, '\n', size - pos)
			    : NULL;
			len = nl ? (size_t)(nl - (data + pos))
			         : (pos < size ? size - pos : 0);
			pos = nl ? pos + len + 1 : size;
		} else {
			len = pos < size ? size - pos : 0;
			if (last_len != NULL)
				*last_len = len;
		}
		if (len > 0)
			memcpy(buf + out, data + start, len);
		fields[i] = buf + out;
		out += len;
		buf[out++] = '\0';
	}
	return buf;
}

#endif
