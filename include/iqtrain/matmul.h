/* matmul.h — the one interface for matrix products and the BLAS thread pool (DESIGN §8).
 * OpenBLAS (Debian's OpenMP build) always; the product kernels arrive with the training core. */
#ifndef IQTRAIN_MATMUL_H
#define IQTRAIN_MATMUL_H

#include "iqtrain/util.h"

/* Checks that the OpenBLAS linked at run time is the OpenMP build (one thread pool with our OpenMP
 * loops). 70 with an explanation otherwise. */
iq_status iq_blas_check(void);
/* "OpenBLAS 0.3.21 (OpenMP) Haswell" or similar. */
const char *iq_blas_info(void);
/* Sets the thread count for OpenMP and OpenBLAS. */
void iq_set_threads(int n);
/* CPUs in this process's affinity mask (the --threads default). */
int iq_default_threads(void);

#endif
