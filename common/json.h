/* json — reading typed fields from a jansson object with errors that name
 * the field, so every handler rejects bad input the same way:
 *   400 FIELD_TYPE      the field has the wrong JSON type (malformed)
 *   422 FIELD_REQUIRED  a required field is missing, null or empty
 *   422 FIELD_INVALID   the value is out of range / not an allowed value
 * (Service-specific codes such as USCC_INVALID come from the caller.) */
#ifndef CAPLAT_JSON_H
#define CAPLAT_JSON_H

#include <jansson.h>
#include <stddef.h>

struct json_field_err {
	int status;          /* 400 or 422 */
	const char *code;    /* stable machine code */
	const char *field;   /* the field's name (borrowed from the caller) */
	const char *message; /* Chinese message for the user */
};

#define JSON_FIELD_REQUIRED 1
#define JSON_FIELD_OPTIONAL 0

/* Reads a string of 1..max_len bytes (valid UTF-8 by jansson). *out is
 * borrowed from obj, or NULL when absent and optional. Returns 0 or -1. */
int json_field_str(json_t *obj, const char *field, int required, size_t max_len,
    const char **out, struct json_field_err *err);
/* Reads an integer in [min, max]; *present is set to 0 when absent and
 * optional (present may be NULL for required fields). */
int json_field_int(json_t *obj, const char *field, int required, long long min,
    long long max, long long *out, int *present, struct json_field_err *err);
/* Reads a string that must be one of allowed (NULL-terminated list). */
int json_field_enum(json_t *obj, const char *field, int required,
    const char *const *allowed, const char **out, struct json_field_err *err);
/* Reads an array of 1..max_items strings, each one of allowed (or any
 * string when allowed is NULL); *out borrowed. */
int json_field_str_array(json_t *obj, const char *field, int required,
    size_t max_items, const char *const *allowed, json_t **out,
    struct json_field_err *err);

/* Fills err for a value the caller judged invalid. */
void json_field_invalid(struct json_field_err *err, const char *field,
    const char *code, const char *message);

#endif
