#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dnnl.h>
#include "iqtrain/matmul.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static float *alloc(size_t n){ void*p=NULL; if(posix_memalign(&p,64,n*4+64)) exit(1); float*f=p; for(size_t i=0;i<n;i++)f[i]=(float)rand()/RAND_MAX-0.5f; return f;}
static float *junk; static size_t njunk=16u<<20;
static void trash(void){ for(size_t i=0;i<njunk;i+=16) junk[i]+=1.0f; }
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){ iq_blas_fix_core(argv); iq_set_threads(2); iq_matmul_configure("onednn","fp32");
  junk=calloc(njunk,4); int R=atoi(argv[1]);
  int sh[][3]={{8192,256,1024},{1024,256,1024},{256,1024,1024},{256,768,1024},{256,256,1024}};
  for(int i=0;i<5;i++){ int M=sh[i][0],N=sh[i][1],K=sh[i][2];
    float*A=alloc((size_t)M*K),*B=alloc((size_t)K*N),*C=alloc((size_t)M*N);
    double t[4][200];
    for(int r=0;r<R;r++) for(int v=0;v<4;v++){ trash(); int kc = v==0?K: v==1?512: v==2?256:128; double t0=now();
      for(int k0=0;k0<K;k0+=kc) dnnl_sgemm('T','N',M,N,kc,1,A+(size_t)k0*M,M,B+(size_t)k0*N,N,1,C,N);
      t[v][r]=now()-t0; }
    double f=2.0*M*N*K/1e9; printf("TN %5d %5d %5d cold, median of %d:",M,N,K,R);
    for(int v=0;v<4;v++){ qsort(t[v],R,8,cmpd); printf(" kc %4d %6.1f", v==0?K: v==1?512: v==2?256:128, f/t[v][R/2]); } printf(" GF/s\n"); fflush(stdout);
    free(A);free(B);free(C);}
}
