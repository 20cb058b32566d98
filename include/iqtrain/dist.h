/* dist.h — data-parallel training over MPI (optional: -DIQTRAIN_MPI=ON; without it every call is the
 * one-process case: rank 0 of 1).
 *
 * Under mpirun/srun every rank runs the same command on the same data. Each micro-batch of the global
 * batch is split across ranks in the deterministic global order; gradients and loss statistics are summed
 * with a reduce to rank 0 followed by a broadcast, so every rank holds bitwise the same sums (an allreduce
 * may sum in a different order on different ranks, and the replicas would drift apart). Rank 0 alone
 * writes files and logs.
 *
 * Failure: MPI errors return instead of aborting; any failed collective, and a signal that arrives while
 * a rank waits in a collective for longer than IQ_DIST_SIGNAL_GRACE seconds (mpirun terminating the
 * survivors of a dead rank), ends the rank at once with exit 70 and a message, without saving. */
#ifndef IQTRAIN_DIST_H
#define IQTRAIN_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "iqtrain/util.h"

#define IQ_DIST_SIGNAL_GRACE 3

/* Initializes MPI when this build has it and the process was started by an MPI launcher (mpirun, srun:
 * detected from the environment); otherwise a world of one. Call once, first thing in main. */
void iq_dist_init(int *argc, char ***argv);
/* Normal exit (rc 0, or 130/143: a stop all ranks agreed on): MPI_Finalize. Failure (rc != 0 on one rank): the
 * other ranks may be waiting in a collective, so the job is aborted (MPI_Abort with rc). */
void iq_dist_finish(int rc);
int iq_dist_rank(void);
int iq_dist_world(void);
bool iq_dist_enabled(void); /* MPI initialized with more than one rank */
const char *iq_dist_info(void); /* "Open MPI v4.1.4, 2 ranks" or "off" */
bool iq_dist_built(void);       /* this build has MPI (-DIQTRAIN_MPI=ON) */

/* Sum over ranks, in place, identical bits on every rank (reduce to 0 + broadcast). */
void iq_dist_sum_f32(float *buf, size_t n);
void iq_dist_sum_f64(double *buf, size_t n);
/* Max over ranks of one value (identical everywhere). */
double iq_dist_max_f64(double x);
/* Broadcast from rank 0. */
void iq_dist_bcast(void *buf, size_t bytes);
/* Agree on a status: the largest of every rank's (0 = ok), so all ranks take the same branch. */
int iq_dist_agree(int st);

/* Called from the trainer's signal handler: a signal while this rank waits in a collective, or arriving
 * before it enters one, starts the grace timer (see above). */
void iq_dist_on_signal(void);

#endif
