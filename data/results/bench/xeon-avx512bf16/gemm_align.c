#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dnnl.h>
#include "iqtrain/matmul.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static float *alloc(size_t n){ void*p=NULL; if(posix_memalign(&p,4096,n*4+4096)) exit(1); float*f=p; for(size_t i=0;i<n+1024;i++)f[i]=(float)rand()/RAND_MAX-0.5f; return f;}
static float *junk; static size_t njunk=16u<<20;
static void trash(void){ for(size_t i=0;i<njunk;i+=16) junk[i]+=1.0f; }
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){ iq_blas_fix_core(argv); iq_set_threads(2); iq_matmul_configure("onednn","fp32");
  junk=calloc(njunk,4); int R=atoi(argv[1]);
  int sh[][5]={{0,0,256,2304,768},{0,1,256,768,2304},{1,0,768,2304,256},{0,0,256,3072,768},{0,1,256,768,3072},{1,0,768,3072,256},{0,0,1024,768,256},{1,0,8192,256,1024},{1,0,1024,256,1024}};
  for(int i=0;i<9;i++){ int*s=sh[i]; int ta=s[0],tb=s[1],M=s[2],N=s[3],K=s[4];
    float*A0=alloc((size_t)M*K),*B0=alloc((size_t)K*N),*C0=alloc((size_t)M*N);
    double t[2][200]; int lda=ta?M:K, ldb=tb?K:N;
    for(int r=0;r<R;r++) for(int v=0;v<2;v++){ int o=v?4:0; trash(); double t0=now(); dnnl_sgemm(ta?'T':'N',tb?'T':'N',M,N,K,1,A0+o,lda,B0+o,ldb,1,C0+o,N); t[v][r]=now()-t0; }
    qsort(t[0],R,8,cmpd); qsort(t[1],R,8,cmpd); double f=2.0*M*N*K/1e9;
    printf("%c%c %5d %5d %5d cold, median of %d: aligned %6.1f  +16 bytes %6.1f GF/s (%+.1f%%)\n",ta?'T':'N',tb?'T':'N',M,N,K,R,f/t[0][R/2],f/t[1][R/2],100*(t[0][R/2]/t[1][R/2]-1)); fflush(stdout);
    free(A0);free(B0);free(C0);}
}
