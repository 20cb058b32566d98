#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "iqtrain/matmul.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static float *rnd(size_t n){float*p=malloc(n*4);for(size_t i=0;i<n;i++)p[i]=(float)rand()/RAND_MAX-0.5f;return p;}
int main(int argc,char**argv){ iq_blas_fix_core(argv); iq_set_threads(atoi(argv[5])); iq_matmul_configure("onednn","fp32");
  int M=atoi(argv[1]),N=atoi(argv[2]),K=atoi(argv[3]),pad=atoi(argv[4]);
  float*A=rnd((size_t)M*K),*B=rnd((size_t)K*(N+pad)),*C=rnd((size_t)M*N);
  double best=1e9;
  for(int r=0;r<8;r++){double t=now(); iq_sgemm_ld(0,0,M,N,K,1,A,K,B,N+pad,1,C,N); t=now()-t; if(r&&t<best)best=t;}
  printf("M%d N%d K%d ldb %d thr %s: %.2f ms %.1f GFLOP/s\n",M,N,K,N+pad,argv[5],best*1e3,2.0*M*N*K/best/1e9);}
