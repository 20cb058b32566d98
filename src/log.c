/* log.c — stderr messages and the progress line. */
#include "iqtrain/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static iq_log_level g_level = IQ_LOG_INFO;
static int g_progress_open = 0;

void iq_log_set_level(iq_log_level level) { g_level = level; }
iq_log_level iq_log_get_level(void) { return g_level; }

bool iq_stderr_is_tty(void) { return isatty(2) == 1; }

static void vlog(const char *tag, const char *fmt, va_list ap) {
    if (g_progress_open) iq_progress_end();
    fprintf(stderr, "iqtrain: %s", tag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
}

void iq_info(const char *fmt, ...) {
    if (g_level < IQ_LOG_INFO) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void iq_debug(const char *fmt, ...) {
    if (g_level < IQ_LOG_DEBUG) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("debug: ", fmt, ap);
    va_end(ap);
}

void iq_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}

void iq_progress(const char *fmt, ...) {
    if (g_level < IQ_LOG_INFO) return;
    va_list ap;
    va_start(ap, fmt);
    if (iq_stderr_is_tty()) {
        fputs("\r\033[K", stderr);
        vfprintf(stderr, fmt, ap);
        g_progress_open = 1;
    } else {
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    va_end(ap);
    fflush(stderr);
}

void iq_progress_end(void) {
    if (g_progress_open) {
        fputc('\n', stderr);
        g_progress_open = 0;
        fflush(stderr);
    }
}
