/* fault.h — named fault-injection points for the reliability tests (test builds only).
 *
 * Compiled in only when CMake is configured with -DIQTRAIN_FAULTS=ON (off by default; it alone defines
 * IQ_FAULTS for the library; scripts/test.sh turns it on for the ASan+UBSan build that runs tests/faults).
 * In every other build iq_fault_point and iq_fault_write are empty inline functions: IQTRAIN_FAULT and
 * IQTRAIN_FAULT_RANK are never read, so the binary users run cannot be made to kill itself or fail its
 * writes by an environment variable. iq_faults_compiled_in tells which build this is (iqtrain --version).
 *
 * In a fault build, IQTRAIN_FAULT="NAME:K" makes the K-th pass through point NAME (1-based; K defaults
 * to 1) kill the process with SIGKILL (iq_fault_point), or, for NAME "write", fail that write with ENOSPC
 * (iq_fault_write). Several specs may be given separated by commas; IQTRAIN_FAULT_RANK=K limits them to
 * MPI rank K. Points: ckpt-begin, ckpt-file (after each file of a checkpoint), ckpt-before-rename,
 * ckpt-after-rename, step-mid (after backward, before the update), final-before-rename; write (every file
 * write in util.c and safetensors.c). */
#ifndef IQTRAIN_FAULT_H
#define IQTRAIN_FAULT_H

#include <stdbool.h>

/* true when this library was built with fault injection (IQTRAIN_FAULTS=ON) */
bool iq_faults_compiled_in(void);

#ifdef IQ_FAULTS
void iq_fault_point(const char *name);
/* true when this write should fail (errno is set to ENOSPC) */
bool iq_fault_write(void);
#else
static inline void iq_fault_point(const char *name) { (void)name; }
static inline bool iq_fault_write(void) { return false; }
#endif

#endif
