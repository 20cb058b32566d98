#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#include <dnnl.h>
#include "iqtrain/matmul.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static float *rnd(size_t n){float*p=malloc(n*4);for(size_t i=0;i<n;i++)p[i]=(float)rand()/RAND_MAX-0.5f;return p;}
static void run(const char*name,int ta,int tb,int M,int N,int K){
  float*A=rnd((size_t)M*K),*B=rnd((size_t)K*N),*C=rnd((size_t)M*N);
  int lda=ta?M:K, ldb=tb?K:N; double b1=1e9,b2=1e9,b3=1e9;
  for(int r=0;r<6;r++){double t=now(); iq_sgemm(ta,tb,M,N,K,1,A,B,1,C); t=now()-t; if(r&&t<b1)b1=t;
   t=now(); dnnl_sgemm(ta?'T':'N',tb?'T':'N',M,N,K,1,A,lda,B,ldb,1,C,N); t=now()-t; if(r&&t<b2)b2=t;
   t=now(); cblas_sgemm(CblasRowMajor,ta?CblasTrans:CblasNoTrans,tb?CblasTrans:CblasNoTrans,M,N,K,1,A,lda,B,ldb,1,C,N); t=now()-t; if(r&&t<b3)b3=t;}
  double f=2.0*M*N*K/1e9;
  printf("%-10s M%6d N%6d K%6d: matmul %6.1f  dnnl_sgemm %6.1f  openblas %6.1f GFLOP/s\n",name,M,N,K,f/b1,f/b2,f/b3);
  free(A);free(B);free(C);}
int main(int argc,char**argv){ iq_blas_fix_core(argv); iq_set_threads(2); iq_matmul_configure("onednn","fp32");
  int n=atoi(argv[1]),c=atoi(argv[2]),V=atoi(argv[3]);
  run("peak",0,0,1024,1024,1024);
  run("qkv fwd",0,0,n,3*c,c); run("qkv dX",0,1,n,c,3*c); run("qkv dW",1,0,c,3*c,n);
  run("proj fwd",0,0,n,c,c); run("proj dX",0,1,n,c,c); run("proj dW",1,0,c,c,n);
  run("fc fwd",0,0,n,4*c,c); run("fc dX",0,1,n,c,4*c); run("fc dW",1,0,c,4*c,n);
  run("fcp fwd",0,0,n,c,4*c); run("fcp dX",0,1,n,4*c,c); run("fcp dW",1,0,4*c,c,n);
  run("head fwd",0,1,n,V,c); run("head dX",0,0,n,c,V); run("head dW",1,0,V,c,n);
  return 0;}
