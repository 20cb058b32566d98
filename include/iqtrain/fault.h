/* fault.h — named fault-injection points for the reliability tests (test builds only).
 *
 * IQTRAIN_FAULT="NAME:K" makes the K-th pass through point NAME (1-based) kill the process with SIGKILL
 * (iq_fault_point), or fail that write with ENOSPC (iq_fault_write, names starting with "write").
 * Several specs may be given separated by commas; IQTRAIN_FAULT_RANK=K limits them to MPI rank K. Built only with -DIQ_FAULTS (IQTRAIN_TESTS=ON); in other
 * builds the calls compile to nothing. Points: ckpt-begin, ckpt-file (after each file of a checkpoint),
 * ckpt-before-rename, ckpt-after-rename, step-mid (after backward, before the update), final-before-rename;
 * write (every file write in util.c and safetensors.c). */
#ifndef IQTRAIN_FAULT_H
#define IQTRAIN_FAULT_H

#include <stdbool.h>

#ifdef IQ_FAULTS
void iq_fault_point(const char *name);
/* true when this write should fail (errno is set to ENOSPC) */
bool iq_fault_write(void);
#else
static inline void iq_fault_point(const char *name) { (void)name; }
static inline bool iq_fault_write(void) { return false; }
#endif

#endif
