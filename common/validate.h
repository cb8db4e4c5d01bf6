/* validate — pure checks of the identifiers users type in: unified social
 * credit codes (GB 32100-2015), resident ID numbers (GB 11643-1999), mobile
 * numbers and e-mail addresses. No I/O; the rules are DOMAIN.md §2. Nothing
 * is trimmed: " 9135…" is invalid, the caller decides what to strip. */
#ifndef CAPLAT_VALIDATE_H
#define CAPLAT_VALIDATE_H

/* Checks a 统一社会信用代码 (USCC): 18 characters over the symbols
 * "0123456789ABCDEFGHJKLMNPQRTUWXY" (lower case accepted), a 6-digit region
 * code in positions 3-8 and the check character in position 18. Returns 0
 * and writes the upper-case code (18 characters + NUL) into out when valid;
 * returns -1 and leaves out untouched otherwise. */
int validate_uscc(const char *s, char out[19]);

/* Checks a 居民身份证号码 of 18 characters: 17 digits and the GB 11643
 * check digit (0-9 or X, lower-case x accepted), with a real birth date in
 * positions 7-14 between 1800-01-01 and today (China Standard Time). Returns
 * 0 and writes the number with an upper-case X into out when valid; returns
 * -1 and leaves out untouched otherwise. */
int validate_id_number(const char *s, char out[19]);

/* Checks a mainland mobile number: 11 digits "1[3-9]xxxxxxxxx", optionally
 * preceded by "+86" (no spaces or dashes). Returns 0 and writes the 11 digits
 * without the prefix into out when valid; returns -1 and leaves out untouched
 * otherwise. */
int validate_mobile(const char *s, char out[12]);

/* Checks an e-mail address as a person types it: ASCII only, at most 254
 * characters, one "@", a local part of 1-64 characters from RFC 5322's atext
 * and dots (no leading, trailing or double dot; no quoted strings), and a
 * domain of at least two DNS labels (letters, digits, inner hyphens, 1-63
 * each) whose last label is not all digits. Returns 0 when valid, -1
 * otherwise. */
int validate_email(const char *s);

#endif
