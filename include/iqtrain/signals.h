/* signals.h — signal handlers that are safe while oneDNN's JIT kernels run.
 *
 * oneDNN's JIT GEMM kernels (gemm:jit, e.g. jit_avx512_common_gemm_f32, what dnnl_sgemm and some matmul
 * primitives run) point the stack pointer into a heap buffer while they work. A signal handled on such a
 * thread pushes its frame there and corrupts the heap; glibc aborts at a later free ("corrupted size vs.
 * prev_size", oneDNN issue #4845, present in 2.6). So a handler installed here runs on an alternate signal
 * stack of the installing thread (sigaltstack, SA_ONSTACK), and the signals are blocked in the OpenMP
 * workers (iq_set_threads' pool, which OpenBLAS and oneDNN share): the kernel delivers them to the
 * installing thread. Threads created later by the installing thread inherit its mask (signals open), so
 * call this after iq_set_threads. Threads of other libraries (MPI's) keep theirs: they run no JIT code. */
#ifndef IQTRAIN_SIGNALS_H
#define IQTRAIN_SIGNALS_H

/* Installs handler for each of the n signals as described above. Idempotent for the alternate stack. */
void iq_signals_install(void (*handler)(int), const int *sigs, int n);

/* Puts the default action back for the n signals and opens them again in the OpenMP workers. */
void iq_signals_restore(const int *sigs, int n);

#endif
