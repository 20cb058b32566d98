#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "iqtrain/kernels.h"
#include "iqtrain/matmul.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static float *rnd(size_t n){float*p=malloc(n*4);for(size_t i=0;i<n;i++)p[i]=(float)rand()/RAND_MAX-0.5f;return p;}
int main(int argc,char**argv){ iq_blas_fix_core(argv); iq_set_threads(2); iq_matmul_configure("onednn","fp32");
  int B=atoi(argv[1]),T=atoi(argv[2]),C=atoi(argv[3]),H=atoi(argv[4]);
  float *qkv=rnd((size_t)B*T*3*C),*out=rnd((size_t)B*T*C),*att=rnd((size_t)B*H*T*T),*datt=rnd((size_t)B*H*T*T),*dqkv=rnd((size_t)B*T*3*C),*dout=rnd((size_t)B*T*C);
  double bf=1e9,bb=1e9;
  for(int r=0;r<20;r++){ double t=now(); iq_attention_forward(out,att,qkv,B,T,C,H); t=now()-t; if(t<bf)bf=t;
    t=now(); iq_attention_backward(dqkv,datt,dout,qkv,att,B,T,C,H); t=now()-t; if(t<bb)bb=t; }
  double hs=C/H, full=2.0*B*H*T*T*hs; /* one full T x T x hs product */
  printf("B%d T%d C%d H%d: fwd %.2f ms (%.1f GF/s full-product rate), bwd %.2f ms (%.1f GF/s); causal-counted flops fwd %.1f bwd %.1f GF/s\n",
    B,T,C,H,bf*1e3,2*full/bf/1e9,bb*1e3,4*full/bb/1e9, full/bf/1e9, 2*full/bb/1e9);
}
