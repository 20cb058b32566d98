/* test_signals.c — signals arriving while oneDNN's JIT GEMM runs do not corrupt the heap (signals.h).
 *
 * A child process sends SIGUSR1 to this one every 20 us for ~2 s while two threads multiply matrices on
 * the oneDNN fp32 backend (dnnl_sgemm: gemm:jit) and allocate and free between products. Checks: the
 * handler ran (many times), every product equals the first one bit for bit, and the process survives
 * (glibc aborts on a corrupted heap, or the process hangs and a 30 s alarm ends it: the failures this
 * guards against, both a non-zero exit).
 * `test_signals --plain` installs the handler with plain sigaction instead (no alternate stack, signals
 * open on every thread): on an x86-64 CPU where oneDNN's gemm:jit runs, that mode aborts within seconds
 * (oneDNN issue #4845) — run it by hand to see the test can fail. Exits 77 (skipped) without oneDNN. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "iqtrain/matmul.h"
#include "iqtrain/signals.h"

static volatile sig_atomic_t g_hits = 0;
static void on_usr1(int sig) {
    (void)sig;
    g_hits++;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (!iq_onednn_built()) {
        printf("skip: this build has no oneDNN\n");
        return 77;
    }
    bool plain = argc > 1 && strcmp(argv[1], "--plain") == 0;
    iq_set_threads(2);
    if (iq_matmul_configure("onednn", "fp32") != IQ_OK) {
        printf("skip: oneDNN cannot run here\n");
        return 77;
    }
    int sigs[1] = {SIGUSR1};
    if (plain) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
    } else {
        iq_signals_install(on_usr1, sigs, 1);
    }
    enum { M = 256, N = 768, K = 768 };
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C = malloc(sizeof(float) * M * N), *C0 = malloc(sizeof(float) * M * N);
    for (unsigned i = 0; i < M * K; i++) A[i] = (float)((i * 7919u) % 1000u) / 1000.0f - 0.5f;
    for (unsigned i = 0; i < K * N; i++) B[i] = (float)((i * 104729u) % 1000u) / 1000.0f - 0.5f;
    iq_sgemm(false, false, M, N, K, 1.0f, A, B, 0.0f, C0);

    alarm(30); /* a corrupted heap can also hang the process: SIGALRM's default action ends it then */
    pid_t parent = getpid(), child = fork();
    if (child == 0) {
        double t0 = now();
        while (now() - t0 < 2.0) {
            if (kill(parent, SIGUSR1) != 0) _exit(0);
            usleep(20);
        }
        _exit(0);
    }
    int products = 0, same = 0;
    double t0 = now();
    while (now() - t0 < 2.5) {
        iq_sgemm(false, false, M, N, K, 1.0f, A, B, 0.0f, C);
        products++;
        same += memcmp(C, C0, sizeof(float) * M * N) == 0;
        for (int s = 16; s <= 1 << 16; s *= 4) free(malloc((size_t)s)); /* a corrupted heap aborts here */
    }
    int status = 0;
    waitpid(child, &status, 0);
    alarm(0);
    printf("%d products, %d signals handled%s\n", products, (int)g_hits, plain ? " (plain handler)" : "");
    CHECK_MSG(g_hits > 100, "only %d signals arrived", (int)g_hits);
    CHECK(products > 10);
    CHECK_MSG(same == products, "%d of %d products differ from the first", products - same, products);
    if (!plain) iq_signals_restore(sigs, 1);
    free(A), free(B), free(C), free(C0);
    CHECK_DONE();
}
