/* log — see log.h. */
#include "cache/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_target log_target_v = LOG_TO_STDERR;  /* protected by log_lock */
static int log_max = LOG_INFO;                        /* protected by log_lock */
static char log_ident[32] = "payloadfs";              /* protected by log_lock */

void log_init(const char *ident, enum log_target target, int max_level)
{
	pthread_mutex_lock(&log_lock);
	if (ident)
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_target_v = target;
	log_max = max_level;
	if (target == LOG_TO_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	pthread_mutex_unlock(&log_lock);
}

const char *log_errname(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);

	return n ? n : "E?";
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: case LOG_INFO: return "info";
	default: return "debug";
	}
}

void log_msg(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	pthread_mutex_lock(&log_lock);
	if (level > log_max) {
		pthread_mutex_unlock(&log_lock);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_target_v == LOG_TO_SYSLOG)
		syslog(level, "%s", buf);
	else
		fprintf(stderr, "%s: %s: %s\n", log_ident, level_name(level), buf);
	pthread_mutex_unlock(&log_lock);
}
