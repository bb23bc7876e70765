/* log — the one logging module: syslog levels, to stderr in the foreground
 * (-f) or to syslog when daemonized. Thread-safe; any thread may call. */
#ifndef PFS_LOG_H
#define PFS_LOG_H

#include <syslog.h>

/* Where messages go. LOG_TO_STDERR is the default until log_init(). */
enum log_target { LOG_TO_STDERR = 0, LOG_TO_SYSLOG = 1 };

/* Set the target, the program name used as prefix/ident, and the most
 * verbose level printed (LOG_ERR … LOG_DEBUG; default LOG_INFO). */
void log_init(const char *ident, enum log_target target, int max_level);

/* printf-style message at a syslog level (LOG_ERR, LOG_WARNING, LOG_INFO,
 * LOG_DEBUG). Never fails visibly: a message that cannot be written is
 * dropped. */
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The symbolic name of errno value ERR (positive or negative): "EIO",
 * "ENOSPC"; "E?" when unknown. Error lines end with it, so that each names
 * the object, the operation and the errno (docs/guide.md, Logs). */
const char *log_errname(int err);

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
