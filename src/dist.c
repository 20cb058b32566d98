/* dist.c — MPI data parallelism (see dist.h). Compiled with IQ_MPI when the build has MPI. */
#include "iqtrain/dist.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_rank = 0, g_world = 1;
static volatile sig_atomic_t g_in_collective = 0, g_signalled = 0;

int iq_dist_rank(void) { return g_rank; }
int iq_dist_world(void) { return g_world; }
bool iq_dist_enabled(void) { return g_world > 1; }

/* SIGALRM: the grace after a signal ran out while this rank was still waiting for the others */
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "iqtrain: another MPI rank failed or stopped answering (signalled while waiting for "
                              "it): exiting without saving; the last complete checkpoint is intact\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(IQ_EINTERNAL);
}

void iq_dist_on_signal(void) {
    g_signalled = 1;
    if (g_world > 1 && g_in_collective) alarm(IQ_DIST_SIGNAL_GRACE);
}

static void enter(void) {
    g_in_collective = 1;
    if (g_signalled) alarm(IQ_DIST_SIGNAL_GRACE);
}

static void leave(void) {
    g_in_collective = 0;
    if (g_signalled) alarm(0);
}

#ifdef IQ_MPI
#include <mpi.h>

static bool g_mpi = false;
static char g_info[160] = "off";

static bool launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return true;
    return false;
}

static void check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, s, &len);
    fprintf(stderr, "iqtrain: rank %d: MPI %s failed (%s): another rank failed; exiting without saving\n", g_rank, what, s);
    _exit(IQ_EINTERNAL);
}

void iq_dist_init(int *argc, char ***argv) {
    if (!launched_by_mpi()) return;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "iqtrain: MPI_Init failed\n");
        exit(IQ_EINTERNAL);
    }
    g_mpi = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = 0;
    snprintf(g_info, sizeof g_info, "%.100s, %d rank%s", lib, g_world, g_world == 1 ? "" : "s");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
}

void iq_dist_finish(int rc) {
    if (!g_mpi) return;
    /* 130/143: every rank agreed to stop after rank 0 saved; anything else may have left others waiting */
    if (rc != 0 && rc != 130 && rc != 143 && g_world > 1) MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
}

const char *iq_dist_info(void) { return g_info; }
bool iq_dist_built(void) { return true; }

/* MPI counts are ints: large buffers go in pieces */
enum { PIECE = 1 << 28 };

/* buf (n elements of `size` bytes) = the sum over ranks: reduce to rank 0, then broadcast */
static void sum_in_place(void *buf, size_t n, MPI_Datatype type, size_t size) {
    if (g_world <= 1) return;
    enter();
    for (size_t o = 0; o < n; o += PIECE) {
        int c = (int)(n - o < PIECE ? n - o : PIECE);
        char *p = (char *)buf + o * size;
        check(MPI_Reduce(g_rank == 0 ? MPI_IN_PLACE : p, p, c, type, MPI_SUM, 0, MPI_COMM_WORLD), "reduce");
        check(MPI_Bcast(p, c, type, 0, MPI_COMM_WORLD), "broadcast");
    }
    leave();
}

void iq_dist_sum_f32(float *buf, size_t n) { sum_in_place(buf, n, MPI_FLOAT, sizeof *buf); }
void iq_dist_sum_f64(double *buf, size_t n) { sum_in_place(buf, n, MPI_DOUBLE, sizeof *buf); }

double iq_dist_max_f64(double x) {
    if (g_world <= 1) return x;
    double y = x;
    enter();
    check(MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "allreduce");
    leave();
    return y;
}

void iq_dist_bcast(void *buf, size_t bytes) {
    if (g_world <= 1) return;
    enter();
    for (size_t o = 0; o < bytes; o += PIECE) {
        int c = (int)(bytes - o < PIECE ? bytes - o : PIECE);
        check(MPI_Bcast((char *)buf + o, c, MPI_BYTE, 0, MPI_COMM_WORLD), "broadcast");
    }
    leave();
}

int iq_dist_agree(int st) {
    if (g_world <= 1) return st;
    int out = st;
    enter();
    check(MPI_Allreduce(&st, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "allreduce");
    leave();
    return out;
}

#else /* no MPI in this build */

void iq_dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *ws = getenv("OMPI_COMM_WORLD_SIZE");
    if (!ws) ws = getenv("PMI_SIZE");
    if (ws && atoi(ws) > 1) {
        fprintf(stderr, "iqtrain: started as one of %s MPI ranks, but this iqtrain was built without MPI "
                        "(configure with -DIQTRAIN_MPI=ON)\n", ws);
        exit(IQ_EUSAGE);
    }
    (void)on_alarm;
    (void)enter;
    (void)leave;
}
void iq_dist_finish(int rc) { (void)rc; }
const char *iq_dist_info(void) { return "off"; }
bool iq_dist_built(void) { return false; }
void iq_dist_sum_f32(float *buf, size_t n) {
    (void)buf;
    (void)n;
}
void iq_dist_sum_f64(double *buf, size_t n) {
    (void)buf;
    (void)n;
}
double iq_dist_max_f64(double x) { return x; }
void iq_dist_bcast(void *buf, size_t bytes) {
    (void)buf;
    (void)bytes;
}
int iq_dist_agree(int st) { return st; }

#endif
