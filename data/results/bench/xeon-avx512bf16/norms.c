#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "iqtrain/kernels.h"
#include "iqtrain/kernels_llama.h"
#include "iqtrain/matmul.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static float *rnd(size_t n){float*p=aligned_alloc(64,(n*4+63)/64*64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/RAND_MAX-0.5f;return p;}
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){ iq_set_threads(2); (void)argc;(void)argv;
  int sh[][2]={{1024,256},{256,768},{512,576}};
  for(int s=0;s<3;s++){ int N=sh[s][0],C=sh[s][1];
    float *x=rnd((size_t)N*C),*o=rnd((size_t)N*C),*w=rnd(C),*b=rnd(C),*m=rnd(N),*r=rnd(N),*d=rnd((size_t)N*C),*dx=rnd((size_t)N*C),*dw=rnd(C),*db=rnd(C);
    double t[4][101];
    for(int k=0;k<101;k++){ double t0=now(); iq_layernorm_forward(o,m,r,x,w,b,N,C,1e-5f); t[0][k]=now()-t0;
      t0=now(); iq_layernorm_backward(dx,dw,db,d,x,w,m,r,N,C); t[1][k]=now()-t0;
      t0=now(); iq_rmsnorm_forward(o,r,x,w,N,C,1e-5f); t[2][k]=now()-t0;
      t0=now(); iq_rmsnorm_backward(dx,dw,d,x,w,r,N,C); t[3][k]=now()-t0; }
    for(int i=0;i<4;i++) qsort(t[i],101,8,cmpd);
    printf("N%5d C%4d: layernorm fwd %6.1f us bwd %6.1f us | rmsnorm fwd %6.1f us bwd %6.1f us (medians)\n",N,C,t[0][50]*1e6,t[1][50]*1e6,t[2][50]*1e6,t[3][50]*1e6);
  }
}
