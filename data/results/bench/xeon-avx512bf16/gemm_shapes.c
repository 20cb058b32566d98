#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "iqtrain/matmul.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  iq_blas_fix_core(argv);
  iq_set_threads(2);
  /* ta tb M N K */
  int sh[][5]={{0,0,1024,768,256},{0,1,1024,256,768},{1,0,256,768,1024},{0,0,1024,1024,256},{0,0,1024,256,1024},{1,0,1024,256,1024},
               {0,1,1017,8192,256},{0,0,1016,256,8192},{1,0,8192,256,1016},
               {0,0,256,2304,768},{0,1,256,768,2304},{1,0,768,2304,256},{0,1,256,50257,768},{1,0,50257,768,128},{0,0,1024,1024,1024}};
  int ns=sizeof sh/sizeof*sh;
  const char *cfg[3][2]={{"openblas","fp32"},{"onednn","fp32"},{"onednn","bf16"}};
  for(int s=0;s<ns;s++){
    int ta=sh[s][0],tb=sh[s][1],M=sh[s][2],N=sh[s][3],K=sh[s][4];
    float*A=malloc(4L*M*K),*B=malloc(4L*K*N),*C=malloc(4L*M*N);
    for(long i=0;i<(long)M*K;i++)A[i]=(i%13)*0.01f; for(long i=0;i<(long)K*N;i++)B[i]=(i%7)*0.01f;
    double best[3]={1e9,1e9,1e9};
    for(int r=0;r<12;r++) for(int c=0;c<3;c++){
      iq_matmul_configure(cfg[c][0],cfg[c][1]);
      double t0=now(); iq_sgemm(ta,tb,M,N,K,1,A,B,0,C); double t=now()-t0; if(r&&t<best[c])best[c]=t;}
    printf("ta%d tb%d %5dx%5dx%5d  GFLOP/s (best of 11): openblas %6.1f  onednn-f32 %6.1f  onednn-bf16 %6.1f\n",ta,tb,M,N,K,
      2.0*M*N*K/best[0]/1e9,2.0*M*N*K/best[1]/1e9,2.0*M*N*K/best[2]/1e9);
    free(A);free(B);free(C);
  }
}
