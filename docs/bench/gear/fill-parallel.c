/* Fills 1 GiB of new memory in 4 MiB buffers with 1 MiB copies on N threads: ./a.out N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <stdint.h>
#include <pthread.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static char *src; static size_t per;
static void *fill(void *arg){
  size_t B=4<<20, n=per/B;
  for(size_t i=0;i<n;i++){ char*p=malloc(B); for(int k=0;k<4;k++){char*d=p+k*(1<<20); uintptr_t a=((uintptr_t)d+4095)&~4095ul, b=((uintptr_t)d+(1<<20))&~4095ul; madvise((void*)a,b-a,MADV_POPULATE_WRITE); memcpy(d,src,1<<20);} }
  return 0;
}
int main(int argc,char**argv){
  int threads=atoi(argv[1]); src=malloc(1<<20); memset(src,7,1<<20);
  per=(1ul<<30)/threads; pthread_t t[8];
  double s=now(); for(int i=0;i<threads;i++) pthread_create(&t[i],0,fill,0); for(int i=0;i<threads;i++) pthread_join(t[i],0);
  printf("threads=%d: %.3f s\n",threads,now()-s);
}
