/* json — typed field readers over jansson objects; see json.h. */
#include "json.h"

#include <string.h>

static int
jf_fail(struct json_field_err *err, int status, const char *code,
    const char *field, const char *message)
{
	err->status = status;
	err->code = code;
	err->field = field;
	err->message = message;
	return -1;
}

void
json_field_invalid(struct json_field_err *err, const char *field,
    const char *code, const char *message)
{
	jf_fail(err, 422, code, field, message);
}

/* Returns the value, or NULL when absent or null (an error if required). */
static json_t *
jf_get(json_t *obj, const char *field, int required, int *failed,
    struct json_field_err *err)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, field) : NULL;

	*failed = 0;
	if (v == NULL || json_is_null(v)) {
		if (required) {
			jf_fail(err, 422, "FIELD_REQUIRED", field,
			    "缺少必填项");
			*failed = 1;
		}
		return NULL;
	}
	return v;
}

int
json_field_str(json_t *obj, const char *field, int required, size_t max_len,
    const char **out, struct json_field_err *err)
{
	int failed;
	json_t *v = jf_get(obj, field, required, &failed, err);

	*out = NULL;
	if (v == NULL)
		return failed ? -1 : 0;
	if (!json_is_string(v))
		return jf_fail(err, 400, "FIELD_TYPE", field,
		    "字段类型错误，应为字符串");
	if (json_string_length(v) == 0) {
		if (required)
			return jf_fail(err, 422, "FIELD_REQUIRED", field,
			    "缺少必填项");
		return 0;
	}
	if (json_string_length(v) > max_len ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return jf_fail(err, 422, "FIELD_INVALID", field,
		    "内容过长或含有非法字符");
	*out = json_string_value(v);
	return 0;
}

int
json_field_int(json_t *obj, const char *field, int required, long long min,
    long long max, long long *out, int *present, struct json_field_err *err)
{
	int failed;
	json_t *v = jf_get(obj, field, required, &failed, err);

	if (present != NULL)
		*present = 0;
	if (v == NULL)
		return failed ? -1 : 0;
	if (!json_is_integer(v))
		return jf_fail(err, 400, "FIELD_TYPE", field,
		    "字段类型错误，应为整数");
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return jf_fail(err, 422, "FIELD_INVALID", field,
		    "数值超出允许范围");
	*out = json_integer_value(v);
	if (present != NULL)
		*present = 1;
	return 0;
}

static int
jf_allowed(const char *s, const char *const *allowed)
{
	if (allowed == NULL)
		return 1;
	for (; *allowed; allowed++)
		if (strcmp(s, *allowed) == 0)
			return 1;
	return 0;
}

int
json_field_enum(json_t *obj, const char *field, int required,
    const char *const *allowed, const char **out, struct json_field_err *err)
{
	if (json_field_str(obj, field, required, 64, out, err) != 0)
		return -1;
	if (*out != NULL && !jf_allowed(*out, allowed)) {
		*out = NULL;
		return jf_fail(err, 422, "FIELD_INVALID", field,
		    "取值不在允许范围内");
	}
	return 0;
}

int
json_field_str_array(json_t *obj, const char *field, int required,
    size_t max_items, const char *const *allowed, json_t **out,
    struct json_field_err *err)
{
	int failed;
	json_t *v = jf_get(obj, field, required, &failed, err), *item;
	size_t i;

	*out = NULL;
	if (v == NULL)
		return failed ? -1 : 0;
	if (!json_is_array(v))
		return jf_fail(err, 400, "FIELD_TYPE", field,
		    "字段类型错误，应为数组");
	if (json_array_size(v) == 0) {
		if (required)
			return jf_fail(err, 422, "FIELD_REQUIRED", field,
			    "至少选择一项");
		return 0;
	}
	if (json_array_size(v) > max_items)
		return jf_fail(err, 422, "FIELD_INVALID", field,
		    "选择的项目过多");
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item))
			return jf_fail(err, 400, "FIELD_TYPE", field,
			    "字段类型错误，应为字符串数组");
		if (!jf_allowed(json_string_value(item), allowed))
			return jf_fail(err, 422, "FIELD_INVALID", field,
			    "取值不在允许范围内");
	}
	*out = v;
	return 0;
}
