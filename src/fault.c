/* fault.c — IQTRAIN_FAULT parsing and the injection points (see fault.h); empty unless IQ_FAULTS. */
#include "iqtrain/fault.h"

bool iq_faults_compiled_in(void) {
#ifdef IQ_FAULTS
    return true;
#else
    return false;
#endif
}

#ifdef IQ_FAULTS
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_SPECS = 16 };
static struct {
    char name[48];
    long at, hits;
} g_specs[MAX_SPECS];
static int g_n = -1;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static void parse(void) {
    g_n = 0;
    const char *env = getenv("IQTRAIN_FAULT");
    if (!env || !*env) return;
    /* IQTRAIN_FAULT_RANK=K: only MPI rank K (from the launcher's environment) takes the faults */
    const char *want = getenv("IQTRAIN_FAULT_RANK"), *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank) rank = getenv("PMI_RANK");
    if (want && strcmp(want, rank ? rank : "0") != 0) return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", env);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p && g_n < MAX_SPECS; p = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(p, ':');
        long at = colon ? strtol(colon + 1, NULL, 10) : 1;
        if (colon) *colon = 0;
        snprintf(g_specs[g_n].name, sizeof g_specs[g_n].name, "%s", p);
        g_specs[g_n].at = at > 0 ? at : 1;
        g_specs[g_n].hits = 0;
        g_n++;
    }
}

/* true when this pass through `name` is the one asked for */
static bool hit(const char *name) {
    pthread_mutex_lock(&g_lock);
    if (g_n < 0) parse();
    bool fire = false;
    for (int i = 0; i < g_n; i++)
        if (strcmp(g_specs[i].name, name) == 0 && ++g_specs[i].hits == g_specs[i].at) fire = true;
    pthread_mutex_unlock(&g_lock);
    return fire;
}

void iq_fault_point(const char *name) {
    if (!hit(name)) return;
    fprintf(stderr, "iqtrain: fault injection: SIGKILL at %s\n", name);
    fflush(stderr);
    kill(getpid(), SIGKILL);
    pause();
}

bool iq_fault_write(void) {
    if (!hit("write")) return false;
    errno = ENOSPC;
    return true;
}
#endif
