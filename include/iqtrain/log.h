/* log.h — messages for people, on stderr. Machine-readable output goes to stdout or files, never here. */
#ifndef IQTRAIN_LOG_H
#define IQTRAIN_LOG_H

#include <stdbool.h>

typedef enum { IQ_LOG_QUIET = 0, IQ_LOG_INFO = 1, IQ_LOG_DEBUG = 2 } iq_log_level;

void iq_log_set_level(iq_log_level level);
iq_log_level iq_log_get_level(void);
/* "iqtrain: ..." lines on stderr (info only at level >= INFO). */
void iq_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void iq_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void iq_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Progress line: redrawn in place on a TTY, printed as a plain line otherwise.
 * iq_progress_end() finishes a redrawn line with a newline. */
void iq_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void iq_progress_end(void);
bool iq_stderr_is_tty(void);

#endif
