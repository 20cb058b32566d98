#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <stdint.h>
#include <omp.h>
#include <dnnl.h>
#define CK(x) do{dnnl_status_t s_=(x); if(s_){printf("fail %d line %d\n",s_,__LINE__);exit(1);}}while(0)
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static dnnl_engine_t eng; static dnnl_stream_t st;
static void *rnd16(size_t n){uint16_t*p=malloc(n*2);for(size_t i=0;i<n;i++)p[i]=0x3f00+(rand()&0x7f);return p;}
static float *rndf(size_t n){float*p=malloc(n*4);for(size_t i=0;i<n;i++)p[i]=(float)rand()/RAND_MAX-0.5f;return p;}
/* mode: 0 plain ab B, 1 ba B, 2 any B (prepacked) ; ta: A transposed */
static double run(int M,int N,int K,int ta,int mode,int bf){
  dnnl_data_type_t dt=bf?dnnl_bf16:dnnl_f32;
  dnnl_memory_desc_t a,b,c,bany; dnnl_dims_t da={M,K},db={K,N},dc={M,N};
  dnnl_dims_t sa={ta?1:K, ta?M:1};
  CK(dnnl_memory_desc_init_by_strides(&a,2,da,dt,sa));
  CK(dnnl_memory_desc_init_by_tag(&b,2,db,dt,mode==1?dnnl_ba:dnnl_ab));
  CK(dnnl_memory_desc_init_by_tag(&bany,2,db,dt,mode==2?dnnl_format_tag_any:(mode==1?dnnl_ba:dnnl_ab)));
  CK(dnnl_memory_desc_init_by_tag(&c,2,dc,dnnl_f32,dnnl_ab));
  dnnl_matmul_desc_t d; CK(dnnl_matmul_desc_init(&d,&a,&bany,NULL,&c));
  dnnl_primitive_desc_t pd; CK(dnnl_primitive_desc_create(&pd,&d,NULL,eng,NULL));
  const char*impl; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl);
  const dnnl_memory_desc_t *wmd=dnnl_primitive_desc_query_md(pd,dnnl_query_weights_md,0);
  dnnl_primitive_t p; CK(dnnl_primitive_create(&p,pd));
  void *A=bf?rnd16((size_t)M*K):(void*)rndf((size_t)M*K),*B=bf?rnd16((size_t)K*N):(void*)rndf((size_t)K*N); float*C=rndf((size_t)M*N);
  dnnl_memory_t ma,mb,mc,mw; CK(dnnl_memory_create(&ma,&a,eng,A)); CK(dnnl_memory_create(&mb,&b,eng,B)); CK(dnnl_memory_create(&mc,&c,eng,C));
  CK(dnnl_memory_create(&mw,wmd,eng,DNNL_MEMORY_ALLOCATE));
  double treo=0;
  { dnnl_primitive_desc_t rpd; CK(dnnl_reorder_primitive_desc_create(&rpd,&b,eng,wmd,eng,NULL)); dnnl_primitive_t r; CK(dnnl_primitive_create(&r,rpd));
    dnnl_exec_arg_t ra[2]={{DNNL_ARG_FROM,mb},{DNNL_ARG_TO,mw}}; for(int i=0;i<3;i++){double t=now(); CK(dnnl_primitive_execute(r,st,2,ra)); dnnl_stream_wait(st); treo=now()-t;} }
  dnnl_exec_arg_t args[3]={{DNNL_ARG_SRC,ma},{DNNL_ARG_WEIGHTS,mw},{DNNL_ARG_DST,mc}};
  double best=1e9; for(int r=0;r<7;r++){double t=now(); CK(dnnl_primitive_execute(p,st,3,args)); dnnl_stream_wait(st); t=now()-t; if(r&&t<best)best=t;}
  printf("  %s M%5d N%5d K%5d ta%d B=%s: %7.2f ms %6.1f GFLOP/s  (%s; reorder %.2f ms)\n",bf?"bf16":"fp32",M,N,K,ta,mode==0?"ab ":mode==1?"ba ":"any",best*1e3,2.0*M*N*K/best/1e9,impl,treo*1e3);
  return best;}
int main(int argc,char**argv){ CK(dnnl_engine_create(&eng,dnnl_cpu,0)); CK(dnnl_stream_create(&st,eng,dnnl_stream_default_flags));
  int n=atoi(argv[1]),c=atoi(argv[2]),V=atoi(argv[3]);
  int sh[][4]={{n,3*c,c,0},{n,c,c,0},{n,4*c,c,0},{n,c,4*c,0}, {n,c,3*c,0},{n,c,4*c,0},{n,4*c,c,0}, {3*c,c,n,1},{4*c,c,n,1},{c,4*c,n,1}, {n,V,c,0},{n,c,V,0},{V,c,n,1}};
  for(unsigned i=0;i<sizeof sh/sizeof sh[0];i++){ int M=sh[i][0],N=sh[i][1],K=sh[i][2],ta=sh[i][3];
    for(int bf=0;bf<2;bf++) for(int m=0;m<3;m++) run(M,N,K,ta,m,bf); }
}
