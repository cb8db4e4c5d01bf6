/* fuzz_http — what common/http.c reads of a request line and its headers
 * before any handler runs: the request URI split as libevent splits it, the
 * path matched against every route pattern of the services (generated into
 * fuzz_routes.inc from the services' sources), the decoded {parameters} and query
 * parameters checked as text (http_params_invalid), http_query_param, the
 * X-Request-Id check and http_text_valid. Input: request URI, '\n',
 * X-Request-Id. http.c is included to reach its static functions. */
#include "fuzz.h"

#include "http.c"

static const char *const fuzz_patterns[] = {
#include "fuzz_routes.inc"
    "/api/v1/{a}/{b}/{c}/{d}/{e}",
};

/* Valid text by a second reading of RFC 3629, for http_text_valid. */
static int
ref_text_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
		} else if (c >= 0xc2 && c <= 0xdf) {
			if (i + 1 >= len || (s[i + 1] & 0xc0) != 0x80)
				return 0;
			i += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
			unsigned char hi = c == 0xed ? 0x9f : 0xbf;
			if (i + 2 >= len || s[i + 1] < lo || s[i + 1] > hi ||
			    (s[i + 2] & 0xc0) != 0x80)
				return 0;
			i += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
			unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;
			if (i + 3 >= len || s[i + 1] < lo || s[i + 1] > hi ||
			    (s[i + 2] & 0xc0) != 0x80 ||
			    (s[i + 3] & 0xc0) != 0x80)
				return 0;
			i += 4;
		} else {
			return 0;
		}
	}
	return 1;
}

static void
route_one(const char *pattern, const char *path, const char *query)
{
	struct http_route route = {"GET", pattern, NULL, 0};
	struct http_req req;
	char field[64];
	const char *bad;
	char *v;

	memset(&req, 0, sizeof(req));
	if (!http_route_match(pattern, path, req.params)) {
		for (int i = 0; i < HTTP_MAX_PARAMS; i++)
			FUZZ_CHECK(req.params[i] == NULL);
		return;
	}
	req.route = &route;
	req.query = query ? xstrdup(query) : NULL;
	bad = http_params_invalid(&req, field, sizeof(field));
	if (bad == NULL) {
		for (int i = 0; i < HTTP_MAX_PARAMS && req.params[i]; i++) {
			FUZZ_CHECK(req.params[i][0] != '\0');
			FUZZ_CHECK(http_text_valid(req.params[i],
			    strlen(req.params[i])));
		}
		v = http_query_param(&req, "platform");
		if (v != NULL)
			FUZZ_CHECK(http_text_valid(v, strlen(v)));
		free(v);
	} else {
		FUZZ_CHECK(strlen(bad) < sizeof(field));
	}
	for (int i = 0; i < HTTP_MAX_PARAMS; i++)
		free(req.params[i]);
	free(req.query);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[2];
	size_t last;
	char *buf = fuzz_split(data, size, f, 2, &last);
	struct evhttp_uri *uri;

	FUZZ_CHECK(http_text_valid(data, size) == ref_text_valid(data, size));
	if (http_request_id_ok(f[1]))
		FUZZ_CHECK(strlen(f[1]) < 48);
	/* evhttp parses the request URI leniently (NONCONFORMANT). */
	uri = evhttp_uri_parse_with_flags(f[0], EVHTTP_URI_NONCONFORMANT);
	if (uri != NULL) {
		const char *path = evhttp_uri_get_path(uri);
		const char *query = evhttp_uri_get_query(uri);
		if (path != NULL && path[0] == '/')
			for (size_t i = 0; i < ARRAY_LEN(fuzz_patterns); i++)
				route_one(fuzz_patterns[i], path, query);
		evhttp_uri_free(uri);
	}
	free(buf);
	return 0;
}
