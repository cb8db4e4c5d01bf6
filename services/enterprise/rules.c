/* rules — field rules of personal info and the enterprise record, merging,
 * completeness and attachment types; pure functions, see rules.h. The record's
 * fields are one table (ent_fields): parsing, the skeleton, the answer's
 * shape and the completeness check all walk it. */
#include "rules.h"

#include "util.h"
#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum ent_kind {
	KIND_TEXT,          /* free text, max_chars code points */
	KIND_FEN,           /* integer >= 0, money in fen */
	KIND_USCC,          /* the record's own USCC */
	KIND_ID_TYPE,       /* legal_rep_id_type enum */
	KIND_ID_NUMBER,     /* checked against the ID type (ent_record_check) */
	KIND_MOBILE,        /* mainland mobile */
	KIND_PHONE,         /* mobile or landline */
	KIND_REGION,        /* {province, city, district} */
	KIND_SUBJECT_TYPES, /* [tenderer, bidder, agency] */
	KIND_HANDLING_POINT, /* a code of the catalogue (checked by the store) */
	KIND_TAXPAYER_TYPE,
	KIND_BANK_ACCOUNT,
	KIND_FILE,  /* an upload of the caller */
	KIND_IMAGE, /* an upload of the caller, JPEG or PNG */
};

enum ent_need {
	NEED_ALWAYS,
	NEED_GENERAL, /* only for a general taxpayer (专票) */
};

struct ent_field {
	const char *part; /* basic | invoice | seal */
	int in_files;     /* the field sits in part.files */
	const char *name;
	const char *path;
	enum ent_kind kind;
	unsigned max_chars;
	enum ent_need need;
	const char *label; /* Chinese name for messages */
};

static const struct ent_field ent_fields[] = {
    {"basic", 0, "name", "basic.name", KIND_TEXT, 200, NEED_ALWAYS, "单位名称"},
    {"basic", 0, "uscc", "basic.uscc", KIND_USCC, 0, NEED_ALWAYS,
        "统一社会信用代码"},
    {"basic", 0, "registered_capital_fen", "basic.registered_capital_fen",
        KIND_FEN, 0, NEED_ALWAYS, "注册资本"},
    {"basic", 0, "legal_rep_name", "basic.legal_rep_name", KIND_TEXT, 64,
        NEED_ALWAYS, "法定代表人"},
    {"basic", 0, "legal_rep_id_number", "basic.legal_rep_id_number",
        KIND_ID_NUMBER, 0, NEED_ALWAYS, "法定代表人证件号码"},
    {"basic", 0, "legal_rep_phone", "basic.legal_rep_phone", KIND_MOBILE, 0,
        NEED_ALWAYS, "法定代表人手机号"},
    {"basic", 0, "domicile", "basic.domicile", KIND_TEXT, 200, NEED_ALWAYS,
        "住所"},
    {"basic", 0, "region", "basic.region", KIND_REGION, 0, NEED_ALWAYS,
        "企业注册地"},
    {"basic", 0, "address", "basic.address", KIND_TEXT, 200, NEED_ALWAYS,
        "公司地址"},
    {"basic", 0, "subject_types", "basic.subject_types", KIND_SUBJECT_TYPES, 0,
        NEED_ALWAYS, "主体类型"},
    {"basic", 0, "legal_rep_id_type", "basic.legal_rep_id_type", KIND_ID_TYPE,
        0, NEED_ALWAYS, "法人证件类型"},
    {"basic", 0, "handling_point", "basic.handling_point", KIND_HANDLING_POINT,
        0, NEED_ALWAYS, "办理点"},
    {"basic", 1, "legal_rep_id_front", "basic.files.legal_rep_id_front",
        KIND_FILE, 0, NEED_ALWAYS, "法定代表人身份证人像面扫描件"},
    {"basic", 1, "legal_rep_id_back", "basic.files.legal_rep_id_back",
        KIND_FILE, 0, NEED_ALWAYS, "法定代表人身份证国徽面扫描件"},
    {"basic", 1, "business_license", "basic.files.business_license", KIND_IMAGE,
        0, NEED_ALWAYS, "营业执照扫描件"},
    {"invoice", 0, "taxpayer_type", "invoice.taxpayer_type", KIND_TAXPAYER_TYPE,
        0, NEED_ALWAYS, "纳税人类型"},
    {"invoice", 0, "bank_name", "invoice.bank_name", KIND_TEXT, 100,
        NEED_ALWAYS, "开户银行名称"},
    {"invoice", 0, "bank_account", "invoice.bank_account", KIND_BANK_ACCOUNT, 0,
        NEED_ALWAYS, "开户银行账号"},
    {"invoice", 0, "invoice_phone", "invoice.invoice_phone", KIND_PHONE, 0,
        NEED_ALWAYS, "开票电话"},
    {"invoice", 0, "invoice_address", "invoice.invoice_address", KIND_TEXT, 200,
        NEED_ALWAYS, "开票地址"},
    {"invoice", 0, "contact_name", "invoice.contact_name", KIND_TEXT, 64,
        NEED_ALWAYS, "发票联系人"},
    {"invoice", 0, "contact_phone", "invoice.contact_phone", KIND_MOBILE, 0,
        NEED_ALWAYS, "发票联系人手机号"},
    {"invoice", 1, "authorization_letter", "invoice.files.authorization_letter",
        KIND_FILE, 0, NEED_ALWAYS, "法定代表人授权委托书扫描件"},
    {"invoice", 1, "special_invoice_info", "invoice.files.special_invoice_info",
        KIND_FILE, 0, NEED_GENERAL, "增值税专用发票开票信息扫描件"},
    {"seal", 1, "seal_form", "seal.files.seal_form", KIND_FILE, 0, NEED_ALWAYS,
        "电子签章印模采集表"},
};

static const char *const ent_parts[] = {"basic", "invoice", "seal", NULL};

/* Keys of the record's answer a client may send back unchanged. */
static const char *const ent_read_only[] = {"id", "uscc", "status", "history",
    "updated_at", "approved_at", "submitted_at", "change", "licence_check",
    NULL};

static const char *const ent_id_types[] = {"resident_id_card", "passport",
    "hk_macao_permit", "taiwan_permit", "foreign_permanent_residence", NULL};
static const char *const ent_subject_types[] = {"tenderer", "bidder", "agency",
    NULL};
static const char *const ent_taxpayer_types[] = {"general", "small_scale",
    "individual", "public_institution", NULL};

/* The province-level divisions (GB/T 2260), as the region picker names them. */
static const char *const ent_provinces[] = {
    "北京市",
    "天津市",
    "河北省",
    "山西省",
    "内蒙古自治区",
    "辽宁省",
    "吉林省",
    "黑龙江省",
    "上海市",
    "江苏省",
    "浙江省",
    "安徽省",
    "福建省",
    "江西省",
    "山东省",
    "河南省",
    "湖北省",
    "湖南省",
    "广东省",
    "广西壮族自治区",
    "海南省",
    "重庆市",
    "四川省",
    "贵州省",
    "云南省",
    "西藏自治区",
    "陕西省",
    "甘肃省",
    "青海省",
    "宁夏回族自治区",
    "新疆维吾尔自治区",
    "台湾省",
    "香港特别行政区",
    "澳门特别行政区",
    NULL,
};

#define REGION_MAX_CHARS 32

/* ---- errors ------------------------------------------------------------- */

static int ent_fail(struct ent_err *err, int status, const char *code,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
ent_fail(struct ent_err *err, int status, const char *code, const char *field,
    const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

int
ent_err_set(struct ent_err *err, int status, const char *code,
    const char *field, const char *message)
{
	return ent_fail(err, status, code, field, "%s", message);
}

static int
one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* ---- text --------------------------------------------------------------- */

/* Code points of valid UTF-8 (jansson guarantees validity). */
static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

static int
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	    c == '\v';
}

/* Free text: no control characters, no leading or trailing white space, at
 * most max code points. The full-width space U+3000 counts as white space. */
static int
text_ok(const char *s, unsigned max, const char **why)
{
	size_t len = strlen(s);

	if (len == 0) {
		*why = "不能为空";
		return 0;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7F) {
			*why = "不能包含控制字符";
			return 0;
		}
	}
	if (is_space((unsigned char)s[0]) ||
	    is_space((unsigned char)s[len - 1]) ||
	    strncmp(s, "\xE3\x80\x80", 3) == 0 ||
	    (len >= 3 && strcmp(s + len - 3, "\xE3\x80\x80") == 0)) {
		*why = "首尾不能有空格";
		return 0;
	}
	if (utf8_chars(s) > max) {
		*why = "内容过长";
		return 0;
	}
	return 1;
}

static int
all_digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, "0123456789") == n;
}

/* A landline as written on invoices: 0 + a 2-3 digit area code, an optional
 * hyphen, 7-8 digits, an optional "-extension" of 1-6 digits; or a 400/800
 * service number of 10 digits with optional hyphens. */
static int
landline_ok(const char *s)
{
	static const char digits[] = "0123456789";
	const char *rest;
	size_t lead = strspn(s, digits), n = 0;

	if (strncmp(s, "400", 3) == 0 || strncmp(s, "800", 3) == 0) {
		for (const char *p = s; *p; p++) {
			if (*p >= '0' && *p <= '9')
				n++;
			else if (*p != '-' || p[1] == '-' || p[1] == '\0')
				return 0;
		}
		return n == 10;
	}
	if (s[0] != '0')
		return 0;
	rest = s + lead;
	if (*rest == '-' && lead >= 3 && lead <= 4) {
		n = strspn(rest + 1, digits);
		if (n < 7 || n > 8)
			return 0;
		rest += 1 + n;
	} else if (lead < 10 || lead > 12) {
		return 0;
	}
	if (*rest == '-') {
		n = strspn(rest + 1, digits);
		if (n < 1 || n > 6)
			return 0;
		rest += 1 + n;
	}
	return *rest == '\0';
}

/* A passport or permit number: 5-32 letters, digits and hyphens. */
static int
other_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 5 || n > 32)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') ||
		        (*s >= 'a' && *s <= 'z') || *s == '-'))
			return 0;
	return 1;
}

static int
handling_point_code_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > 32 || s[0] < 'A' || s[0] > 'Z')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		        *s == '_'))
			return 0;
	return 1;
}

/* Lower-cases a UUID into out; 0, or -1 when s is not one. */
static int
uuid_normalize(const char *s, char out[37])
{
	if (!uuid_valid(s))
		return -1;
	for (int i = 0; i < 37; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a')
		                                      : s[i];
	return 0;
}

/* ---- the record's fields ------------------------------------------------ */

static const struct ent_field *
field_find(const char *part, int in_files, const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(ent_fields); i++) {
		const struct ent_field *f = &ent_fields[i];
		if (f->in_files == in_files && strcmp(f->part, part) == 0 &&
		    strcmp(f->name, name) == 0)
			return f;
	}
	return NULL;
}

/* The object holding field f inside a record body, created when create. */
static json_t *
field_parent(json_t *body, const struct ent_field *f, int create)
{
	json_t *part = json_object_get(body, f->part);

	if (part == NULL) {
		if (!create)
			return NULL;
		part = json_object();
		json_object_set_new(body, f->part, part);
	}
	if (!f->in_files)
		return part;
	json_t *files = json_object_get(part, "files");
	if (files == NULL && create) {
		files = json_object();
		json_object_set_new(part, "files", files);
	}
	return files;
}

/* The field's value in body (borrowed), NULL when absent or null. */
static json_t *
field_value(json_t *body, const struct ent_field *f)
{
	json_t *parent = field_parent(body, f, 0);
	json_t *v = parent ? json_object_get(parent, f->name) : NULL;

	return json_is_null(v) ? NULL : v;
}

static int
parse_region(json_t *v, const struct ent_field *f, json_t **out,
    struct ent_err *err)
{
	static const char *const keys[] = {"province", "city", "district",
	    NULL};
	static const char *const paths[] = {"basic.region.province",
	    "basic.region.city", "basic.region.district"};
	const char *key, *why;
	json_t *item;

	if (!json_is_object(v))
		return ent_fail(err, 400, "FIELD_TYPE", f->path,
		    "%s应为对象（省、市、区县）", f->label);
	json_object_foreach(v, key, item)
	{
		if (!one_of(key, keys))
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s不支持字段 %s", f->label, key);
	}
	for (int i = 0; keys[i]; i++) {
		item = json_object_get(v, keys[i]);
		if (item == NULL || json_is_null(item) ||
		    (json_is_string(item) && json_string_length(item) == 0))
			return ent_fail(err, 422, "FIELD_REQUIRED", paths[i],
			    "请选择完整的省、市、区县");
		if (!json_is_string(item))
			return ent_fail(err, 400, "FIELD_TYPE", paths[i],
			    "地区名称应为字符串");
		const char *s = json_string_value(item);
		if (strlen(s) != json_string_length(item) ||
		    !text_ok(s, REGION_MAX_CHARS, &why))
			return ent_fail(err, 422, "FIELD_INVALID", paths[i],
			    "地区名称%s",
			    strlen(s) != json_string_length(item)
			        ? "含有非法字符"
			        : why);
		if (i == 0 && !one_of(s, ent_provinces))
			return ent_fail(err, 422, "FIELD_INVALID", paths[i],
			    "省份“%s”不存在", s);
	}
	*out = json_pack("{s:O, s:O, s:O}", "province",
	    json_object_get(v, "province"), "city", json_object_get(v, "city"),
	    "district", json_object_get(v, "district"));
	return 0;
}

static int
parse_subject_types(json_t *v, const struct ent_field *f, json_t **out,
    struct ent_err *err)
{
	size_t i, j;
	json_t *item;

	if (!json_is_array(v))
		return ent_fail(err, 400, "FIELD_TYPE", f->path, "%s应为数组",
		    f->label);
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item))
			return ent_fail(err, 400, "FIELD_TYPE", f->path,
			    "%s应为字符串数组", f->label);
		if (!one_of(json_string_value(item), ent_subject_types))
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s只能是招标人、投标人、招标代理机构", f->label);
		for (j = 0; j < i; j++)
			if (json_equal(item, json_array_get(v, j)))
				return ent_fail(err, 422, "FIELD_INVALID",
				    f->path, "%s不能重复", f->label);
	}
	*out = json_array_size(v) ? json_deep_copy(v) : json_null();
	return 0;
}

static int
add_file_ref(struct ent_refs *refs, const struct ent_field *f, const char *id)
{
	struct ent_file_ref *r;

	if (refs->nfiles == ENT_MAX_FILE_REFS)
		return -1;
	r = &refs->files[refs->nfiles++];
	r->path = f->path;
	snprintf(r->id, sizeof(r->id), "%.36s", id);
	r->images_only = f->kind == KIND_IMAGE;
	return 0;
}

/* Checks one given value of field f; *out is the normalized value (new
 * reference, json null to clear). */
static int
parse_value(const struct ent_field *f, json_t *v, const char *uscc,
    json_t **out, struct ent_refs *refs, struct ent_err *err)
{
	const char *s = NULL, *why;
	char norm[40];

	/* null clears a field; so does "" where the field is a string. */
	if (json_is_null(v) ||
	    (json_is_string(v) && json_string_length(v) == 0 &&
	        f->kind != KIND_FEN && f->kind != KIND_REGION &&
	        f->kind != KIND_SUBJECT_TYPES)) {
		if (f->kind == KIND_USCC)
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s不能清空", f->label);
		*out = json_null();
		return 0;
	}
	switch (f->kind) {
	case KIND_FEN:
		if (!json_is_integer(v))
			return ent_fail(err, 400, "FIELD_TYPE", f->path,
			    "%s应为整数（单位：分）", f->label);
		if (json_integer_value(v) < 0 ||
		    json_integer_value(v) > ENT_CAPITAL_MAX_FEN)
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s超出允许范围", f->label);
		*out = json_integer(json_integer_value(v));
		return 0;
	case KIND_REGION:
		return parse_region(v, f, out, err);
	case KIND_SUBJECT_TYPES:
		return parse_subject_types(v, f, out, err);
	default:
		break;
	}
	if (!json_is_string(v))
		return ent_fail(err, 400, "FIELD_TYPE", f->path, "%s应为字符串",
		    f->label);
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return ent_fail(err, 422, "FIELD_INVALID", f->path,
		    "%s含有非法字符", f->label);
	switch (f->kind) {
	case KIND_TEXT:
		if (!text_ok(s, f->max_chars, &why))
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s%s", f->label, why);
		*out = json_string(s);
		return 0;
	case KIND_USCC:
		if (validate_uscc(s, norm) != 0)
			return ent_fail(err, 422, "USCC_INVALID", f->path,
			    "%s不正确", f->label);
		if (strcmp(norm, uscc) != 0)
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s与当前企业身份不一致", f->label);
		*out = json_string(norm);
		return 0;
	case KIND_ID_TYPE:
		if (!one_of(s, ent_id_types))
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s取值无效", f->label);
		*out = json_string(s);
		return 0;
	case KIND_ID_NUMBER:
		/* The format depends on the ID type: ent_record_check. */
		if (strlen(s) > 32)
			return ent_fail(err, 422, "ID_NUMBER_INVALID", f->path,
			    "%s不正确", f->label);
		*out = json_string(s);
		return 0;
	case KIND_MOBILE:
		if (validate_mobile(s, norm) != 0)
			return ent_fail(err, 422, "PHONE_INVALID", f->path,
			    "%s格式不正确", f->label);
		*out = json_string(norm);
		return 0;
	case KIND_PHONE:
		if (validate_mobile(s, norm) == 0) {
			*out = json_string(norm);
			return 0;
		}
		if (!landline_ok(s))
			return ent_fail(err, 422, "PHONE_INVALID", f->path,
			    "%s应为手机号或固定电话（如 024-12345678）",
			    f->label);
		*out = json_string(s);
		return 0;
	case KIND_HANDLING_POINT:
		if (!handling_point_code_ok(s))
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s不存在", f->label);
		snprintf(refs->handling_point, sizeof(refs->handling_point),
		    "%s", s);
		*out = json_string(s);
		return 0;
	case KIND_TAXPAYER_TYPE:
		if (!one_of(s, ent_taxpayer_types))
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s取值无效", f->label);
		*out = json_string(s);
		return 0;
	case KIND_BANK_ACCOUNT:
		if (!all_digits(s, 6, 32))
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "%s应为 6 至 32 位数字", f->label);
		*out = json_string(s);
		return 0;
	case KIND_FILE:
	case KIND_IMAGE:
		if (uuid_normalize(s, norm) != 0)
			return ent_fail(err, 422, "FILE_NOT_FOUND", f->path,
			    "%s不存在，请重新上传", f->label);
		if (add_file_ref(refs, f, norm) != 0)
			return ent_fail(err, 422, "FIELD_INVALID", f->path,
			    "附件过多");
		*out = json_string(norm);
		return 0;
	default:
		return ent_fail(err, 422, "FIELD_INVALID", f->path, "%s不正确",
		    f->label);
	}
}

/* Parses the fields of one object (a part, or a part's files). */
static int
parse_fields(json_t *obj, const char *part, int in_files, const char *uscc,
    json_t *patch, struct ent_refs *refs, struct ent_err *err)
{
	const char *key;
	json_t *v;
	char path[96];

	json_object_foreach(obj, key, v)
	{
		const struct ent_field *f;
		json_t *norm = NULL;

		if (!in_files && strcmp(key, "files") == 0) {
			snprintf(path, sizeof(path), "%s.files", part);
			if (!json_is_object(v))
				return ent_fail(err, 400, "FIELD_TYPE", path,
				    "附件应为对象");
			if (parse_fields(v, part, 1, uscc, patch, refs, err) !=
			    0)
				return -1;
			continue;
		}
		f = field_find(part, in_files, key);
		if (f == NULL) {
			snprintf(path, sizeof(path), "%s.%s%s", part,
			    in_files ? "files." : "", key);
			return ent_fail(err, 422, "FIELD_INVALID", path,
			    "不支持的字段");
		}
		if (parse_value(f, v, uscc, &norm, refs, err) != 0)
			return -1;
		json_object_set_new(field_parent(patch, f, 1), f->name, norm);
	}
	return 0;
}

int
ent_record_parse(json_t *body, const char *uscc, json_t **patch,
    struct ent_refs *refs, struct ent_err *err)
{
	json_t *p = json_object(), *v;
	const char *key;

	memset(refs, 0, sizeof(*refs));
	json_object_foreach(body, key, v)
	{
		if (one_of(key, ent_read_only))
			continue;
		if (!one_of(key, ent_parts)) {
			json_decref(p);
			return ent_fail(err, 422, "FIELD_INVALID", key,
			    "不支持的字段");
		}
		if (!json_is_object(v)) {
			json_decref(p);
			return ent_fail(err, 400, "FIELD_TYPE", key,
			    "%s应为对象", key);
		}
		if (parse_fields(v, key, 0, uscc, p, refs, err) != 0) {
			json_decref(p);
			return -1;
		}
	}
	if (json_object_size(p) == 0) {
		json_decref(p);
		return ent_fail(err, 422, "FIELD_REQUIRED", NULL,
		    "请至少填写一项企业信息");
	}
	*patch = p;
	return 0;
}

json_t *
ent_record_parts(json_t *data)
{
	json_t *out = json_object();

	for (size_t i = 0; i < ARRAY_LEN(ent_fields); i++) {
		const struct ent_field *f = &ent_fields[i];
		json_t *v = field_value(data, f);
		json_object_set_new(field_parent(out, f, 1), f->name,
		    v ? json_deep_copy(v) : json_null());
	}
	return out;
}

json_t *
ent_record_skeleton(const char *uscc, const char *name)
{
	json_t *data = ent_record_parts(NULL);

	json_t *basic = json_object_get(data, "basic");
	json_object_set_new(basic, "uscc", json_string(uscc));
	if (name != NULL && *name != '\0')
		json_object_set_new(basic, "name", json_string(name));
	json_object_set_new(basic, "legal_rep_id_type",
	    json_string("resident_id_card"));
	return data;
}

json_t *
ent_record_merge(json_t *data, json_t *patch)
{
	json_t *out = ent_record_parts(data);

	for (size_t i = 0; i < ARRAY_LEN(ent_fields); i++) {
		const struct ent_field *f = &ent_fields[i];
		json_t *parent = field_parent(patch, f, 0);
		json_t *v = parent ? json_object_get(parent, f->name) : NULL;
		if (v != NULL)
			json_object_set(field_parent(out, f, 1), f->name, v);
	}
	return out;
}

int
ent_record_check(json_t *merged, json_t *patch, struct ent_err *err)
{
	const struct ent_field *num_f =
	    field_find("basic", 0, "legal_rep_id_number");
	const struct ent_field *type_f =
	    field_find("basic", 0, "legal_rep_id_type");
	json_t *basic = json_object_get(patch, "basic");
	json_t *num, *type;
	char norm[19];

	if (basic == NULL ||
	    (json_object_get(basic, num_f->name) == NULL &&
	        json_object_get(basic, type_f->name) == NULL))
		return 0;
	num = field_value(merged, num_f);
	type = field_value(merged, type_f);
	if (num == NULL)
		return 0;
	if (type == NULL ||
	    strcmp(json_string_value(type), "resident_id_card") == 0) {
		if (validate_id_number(json_string_value(num), norm) != 0)
			return ent_fail(err, 422, "ID_NUMBER_INVALID",
			    num_f->path, "法定代表人身份证号码不正确");
		json_object_set_new(field_parent(merged, num_f, 0), num_f->name,
		    json_string(norm));
		return 0;
	}
	if (!other_id_ok(json_string_value(num)))
		return ent_fail(err, 422, "ID_NUMBER_INVALID", num_f->path,
		    "法定代表人证件号码应为 5 至 32 位字母、数字或连字符");
	return 0;
}

json_t *
ent_record_missing(json_t *data)
{
	json_t *missing = json_array();
	json_t *taxpayer =
	    field_value(data, field_find("invoice", 0, "taxpayer_type"));
	int general =
	    taxpayer && strcmp(json_string_value(taxpayer), "general") == 0;

	for (size_t i = 0; i < ARRAY_LEN(ent_fields); i++) {
		const struct ent_field *f = &ent_fields[i];
		json_t *v = field_value(data, f);
		if (f->need == NEED_GENERAL && !general)
			continue;
		if (v == NULL || (json_is_array(v) && json_array_size(v) == 0))
			json_array_append_new(missing, json_string(f->path));
	}
	return missing;
}

/* ---- personal info ------------------------------------------------------ */

static int
profile_str(json_t *body, const char *field, const char **out,
    struct ent_err *err)
{
	json_t *v = json_object_get(body, field);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return ent_fail(err, 400, "FIELD_TYPE", field,
		    "字段类型错误，应为字符串");
	if (json_string_length(v) == 0)
		return ent_fail(err, 422, "FIELD_REQUIRED", field,
		    "内容不能为空");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return ent_fail(err, 422, "FIELD_INVALID", field,
		    "含有非法字符");
	*out = json_string_value(v);
	return 0;
}

int
ent_profile_parse(json_t *body, struct ent_profile_update *out,
    struct ent_err *err)
{
	static const char *const known[] = {"name", "id_number", "email",
	    "id_card_front_file", "id_card_back_file", "status", NULL};
	const char *key, *s, *why;
	json_t *v;

	memset(out, 0, sizeof(*out));
	json_object_foreach(body, key, v)
	{
		if (!one_of(key, known))
			return ent_fail(err, 422, "FIELD_INVALID", key,
			    "不支持的字段");
	}
	if (profile_str(body, "name", &out->name, err) != 0)
		return -1;
	if (out->name != NULL && !text_ok(out->name, 64, &why))
		return ent_fail(err, 422, "FIELD_INVALID", "name", "姓名%s",
		    why);
	if (profile_str(body, "id_number", &s, err) != 0)
		return -1;
	if (s != NULL && validate_id_number(s, out->id_number) != 0)
		return ent_fail(err, 422, "ID_NUMBER_INVALID", "id_number",
		    "身份证号码不正确");
	if (profile_str(body, "email", &out->email, err) != 0)
		return -1;
	if (out->email != NULL && validate_email(out->email) != 0)
		return ent_fail(err, 422, "EMAIL_INVALID", "email",
		    "电子邮箱格式不正确");
	if (profile_str(body, "id_card_front_file", &s, err) != 0)
		return -1;
	if (s != NULL && uuid_normalize(s, out->id_card_front_file) != 0)
		return ent_fail(err, 422, "FILE_NOT_FOUND",
		    "id_card_front_file",
		    "身份证人像面扫描件不存在，请重新上传");
	if (profile_str(body, "id_card_back_file", &s, err) != 0)
		return -1;
	if (s != NULL && uuid_normalize(s, out->id_card_back_file) != 0)
		return ent_fail(err, 422, "FILE_NOT_FOUND", "id_card_back_file",
		    "身份证国徽面扫描件不存在，请重新上传");
	if (out->name == NULL && out->id_number[0] == '\0' &&
	    out->email == NULL && out->id_card_front_file[0] == '\0' &&
	    out->id_card_back_file[0] == '\0')
		return ent_fail(err, 422, "FIELD_REQUIRED", NULL,
		    "请至少填写一项个人信息");
	return 0;
}

/* ---- review ------------------------------------------------------------- */

#define OPINION_MAX_CHARS 1000

int
ent_opinion_parse(json_t *body, int required, const char **out,
    struct ent_err *err)
{
	json_t *v = json_object_get(body, "opinion");
	const char *s;
	int blank = 1;

	*out = NULL;
	if (v != NULL && !json_is_null(v) && !json_is_string(v))
		return ent_fail(err, 400, "FIELD_TYPE", "opinion",
		    "处理意见应为字符串");
	s = json_string_value(v);
	if (s != NULL && strlen(s) != json_string_length(v))
		return ent_fail(err, 422, "FIELD_INVALID", "opinion",
		    "处理意见含有非法字符");
	for (const char *p = s; p != NULL && *p != '\0';) {
		unsigned char c = (unsigned char)*p;
		if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') ||
		    c == 0x7F)
			return ent_fail(err, 422, "FIELD_INVALID", "opinion",
			    "处理意见含有非法字符");
		if (is_space(c)) {
			p++;
		} else if (strncmp(p, "\xE3\x80\x80", 3) == 0) {
			p += 3; /* full-width space */
		} else {
			blank = 0;
			p++;
		}
	}
	if (blank) {
		if (required)
			return ent_fail(err, 422, "OPINION_REQUIRED", "opinion",
			    "请填写处理意见");
		return 0;
	}
	if (utf8_chars(s) > OPINION_MAX_CHARS)
		return ent_fail(err, 422, "FIELD_INVALID", "opinion",
		    "处理意见不能超过 1000 字");
	*out = s;
	return 0;
}

/* Copies s into out (size bytes) on one line: control characters become
 * spaces, and a cut falls on a UTF-8 character boundary. */
static void
sms_clean(const char *s, char *out, size_t size)
{
	size_t n = 0;

	for (; s[n] != '\0' && n + 1 < size; n++)
		out[n] =
		    (unsigned char)s[n] < 0x20 || s[n] == 0x7F ? ' ' : s[n];
	if (s[n] != '\0')
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--; /* s[n] continues a character: cut before its lead byte */
	out[n] = '\0';
}

void
ent_review_sms_text(char *out, size_t size, const char *record_id, int approved,
    int change, const char *name, const char *opinion)
{
	char clean_name[256], clean_opinion[ENT_SMS_OPINION_MAX + 1];
	const char *what = change ? "企业信息变更" : "企业信息";

	sms_clean(name ? name : "", clean_name, sizeof(clean_name));
	sms_clean(opinion ? opinion : "", clean_opinion, sizeof(clean_opinion));
	if (approved)
		snprintf(out, size,
		    "purpose=review_result record=%s result=approved "
		    "【CA互联互通】您提交的%s（%s）已审核通过，%s。",
		    record_id, what, clean_name,
		    change ? "变更后的信息已生效" : "可申请 CA 数字证书延期");
	else
		snprintf(out, size,
		    "purpose=review_result record=%s result=rejected "
		    "【CA互联互通】您提交的%s（%s）审核不通过，处理意见：%s。请登录平台修改后重新提交审核。",
		    record_id, what, clean_name, clean_opinion);
}

void
ent_admin_application_sms_text(char *out, size_t size,
    const char *application_id, int approved, const char *name,
    const char *opinion)
{
	char clean_name[256], clean_opinion[ENT_SMS_OPINION_MAX + 1];

	sms_clean(name ? name : "", clean_name, sizeof(clean_name));
	sms_clean(opinion ? opinion : "", clean_opinion, sizeof(clean_opinion));
	if (approved)
		snprintf(out, size,
		    "purpose=admin_application application=%s result=approved "
		    "【CA互联互通】您提交的%s管理员申请已审核通过，请登录平台切换到企业管理员身份。",
		    application_id, clean_name);
	else
		snprintf(out, size,
		    "purpose=admin_application application=%s result=rejected "
		    "【CA互联互通】您提交的%s管理员申请审核不通过，处理意见：%s。",
		    application_id, clean_name, clean_opinion);
}

/* ---- least privilege ---------------------------------------------------- */

/* The public part of a record: answer key ← dotted path in the full
 * answer. Everything else (the legal representative's ID number and phone,
 * the bank account, the attachments, the history, a change under way) is
 * the administrator's. */
static const struct {
	const char *key;
	const char *from;
} ent_public_fields[] = {
    {"id", "id"},
    {"uscc", "uscc"},
    {"status", "status"},
    {"name", "basic.name"},
    {"handling_point", "basic.handling_point"},
    {"invoice_title", "basic.name"},
    {"taxpayer_id", "uscc"},
    {"approved_at", "approved_at"},
};

static json_t *
dotted_get(json_t *o, const char *path)
{
	char key[64];

	while (o != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = json_object_get(o, key);
		path += n + (path[n] == '.');
	}
	return o;
}

json_t *
ent_record_public(json_t *full)
{
	json_t *out = json_object();

	for (size_t i = 0; i < ARRAY_LEN(ent_public_fields); i++) {
		json_t *v = dotted_get(full, ent_public_fields[i].from);
		json_object_set_new(out, ent_public_fields[i].key,
		    v != NULL ? json_deep_copy(v) : json_null());
	}
	return out;
}

/* ---- administrator applications ---------------------------------------- */

/* A required string field of an application: 0 with *out set, or -1. The
 * same rules as profile_str, but absent or null is FIELD_REQUIRED. */
static int
app_str(json_t *body, const char *field, const char **out, struct ent_err *err)
{
	json_t *v = json_object_get(body, field);

	if (v == NULL || json_is_null(v)) {
		*out = NULL;
		return ent_fail(err, 422, "FIELD_REQUIRED", field,
		    "请填写此项");
	}
	return profile_str(body, field, out, err);
}

int
ent_admin_application_parse(json_t *body, struct ent_admin_application *out,
    struct ent_err *err)
{
	static const char *const known[] = {"enterprise_name", "uscc",
	    "id_number", "authorization_file_id", NULL};
	const char *key, *s, *why;
	json_t *v;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(body))
		return ent_fail(err, 400, "BAD_JSON", NULL,
		    "请求体应为 JSON 对象");
	json_object_foreach(body, key, v)
	{
		if (!one_of(key, known))
			return ent_fail(err, 422, "FIELD_INVALID", key,
			    "不支持的字段");
	}
	if (app_str(body, "enterprise_name", &out->enterprise_name, err) != 0)
		return -1;
	if (!text_ok(out->enterprise_name, 200, &why))
		return ent_fail(err, 422, "FIELD_INVALID", "enterprise_name",
		    "单位名称%s", why);
	if (app_str(body, "uscc", &s, err) != 0)
		return -1;
	if (validate_uscc(s, out->uscc) != 0)
		return ent_fail(err, 422, "USCC_INVALID", "uscc",
		    "统一社会信用代码不正确");
	if (app_str(body, "id_number", &s, err) != 0)
		return -1;
	if (validate_id_number(s, out->id_number) != 0)
		return ent_fail(err, 422, "ID_NUMBER_INVALID", "id_number",
		    "身份证号码不正确");
	if (app_str(body, "authorization_file_id", &s, err) != 0)
		return -1;
	if (uuid_normalize(s, out->authorization_file_id) != 0)
		return ent_fail(err, 422, "FILE_NOT_FOUND",
		    "authorization_file_id", "授权委托书不存在，请重新上传");
	return 0;
}

/* ---- attachments -------------------------------------------------------- */

static const char *const ent_file_types[] = {"image/jpeg", "image/png",
    "application/pdf", NULL};

const char *
ent_file_content_type(const char *header)
{
	size_t n;

	if (header == NULL)
		return NULL;
	while (*header == ' ' || *header == '\t')
		header++;
	n = strcspn(header, ";");
	while (n > 0 && (header[n - 1] == ' ' || header[n - 1] == '\t'))
		n--;
	for (int i = 0; ent_file_types[i]; i++)
		if (strlen(ent_file_types[i]) == n &&
		    strncasecmp(header, ent_file_types[i], n) == 0)
			return ent_file_types[i];
	return NULL;
}

const char *
ent_file_sniff(const void *data, size_t len)
{
	static const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF};
	static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n',
	    0x1A, '\n'};
	static const unsigned char pdf[] = {'%', 'P', 'D', 'F', '-'};

	if (len >= sizeof(jpeg) && memcmp(data, jpeg, sizeof(jpeg)) == 0)
		return "image/jpeg";
	if (len >= sizeof(png) && memcmp(data, png, sizeof(png)) == 0)
		return "image/png";
	if (len >= sizeof(pdf) && memcmp(data, pdf, sizeof(pdf)) == 0)
		return "application/pdf";
	return NULL;
}
