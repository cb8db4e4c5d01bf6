/* log — one line per event on stderr: "ts=… lvl=… svc=… req=… msg=… k=v…".
 * The level is checked before the arguments are formatted. Never pass secrets,
 * codes, tokens or full ID numbers: use log_mask_id() for identifiers. */
#ifndef CAPLAT_LOG_H
#define CAPLAT_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

extern enum log_level log_min_level;

/* Sets the service name printed as svc= and the minimum level. */
void log_init(const char *service, enum log_level min_level);
/* Parses "debug|info|warn|error"; returns -1 on an unknown name. */
int log_level_parse(const char *name, enum log_level *out);

/* Writes one line. req may be NULL (printed as "-"). fmt is the rest of the
 * line, conventionally "msg=word k=v k=v". Thread-safe. */
void log_line(enum log_level level, const char *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_at(level, req, ...)                                \
	do {                                                   \
		if ((level) >= log_min_level)                  \
			log_line((level), (req), __VA_ARGS__); \
	} while (0)
#define log_debug(req, ...) log_at(LOG_DEBUG, req, __VA_ARGS__)
#define log_info(req, ...) log_at(LOG_INFO, req, __VA_ARGS__)
#define log_warn(req, ...) log_at(LOG_WARN, req, __VA_ARGS__)
#define log_error(req, ...) log_at(LOG_ERROR, req, __VA_ARGS__)

/* Writes a masked copy of an identifier (phone, ID number) into out: first 3
 * and last 2 characters kept, the rest '*'. out must hold strlen(s)+1 bytes,
 * at most 64. */
void log_mask_id(const char *s, char *out, unsigned out_size);

#endif
