/* signals.c — handlers on an alternate stack, signals kept off the OpenMP workers (why: signals.h). */
#include "iqtrain/signals.h"

#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

enum { ALT_STACK_BYTES = 1 << 16 }; /* the handlers set a flag, write a line or _exit: far less */

static _Alignas(64) unsigned char g_alt_stack[ALT_STACK_BYTES];

static void set_of(sigset_t *set, const int *sigs, int n) {
    sigemptyset(set);
    for (int i = 0; i < n; i++) sigaddset(set, sigs[i]);
}

/* how (SIG_BLOCK, SIG_UNBLOCK) the set in every thread of the OpenMP pool but the calling one */
static void mask_workers(int how, const sigset_t *set) {
#pragma omp parallel
    {
        if (omp_get_thread_num() != 0) pthread_sigmask(how, set, NULL);
    }
}

void iq_signals_install(void (*handler)(int), const int *sigs, int n) {
    stack_t ss = {.ss_sp = g_alt_stack, .ss_size = sizeof g_alt_stack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    sigset_t set;
    set_of(&set, sigs, n);
    mask_workers(SIG_BLOCK, &set);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < n; i++) sigaction(sigs[i], &sa, NULL);
}

void iq_signals_restore(const int *sigs, int n) {
    for (int i = 0; i < n; i++) signal(sigs[i], SIG_DFL);
    sigset_t set;
    set_of(&set, sigs, n);
    mask_workers(SIG_UNBLOCK, &set);
}
