/* Fills 1 GiB in 4 MiB buffers: ./a.out 0 (anon, populated) | 1 (memfd, pwrite, then mmap) | 2 (memfd, MAP_POPULATE); then reads it all. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>
#include <stdint.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#define MADV_POPULATE_READ 22
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int mode=atoi(argv[1]);
  size_t B=4<<20, total=1ul<<30, n=total/B;
  char *src=malloc(1<<20); for(int i=0;i<1<<20;i++) src[i]=i*7;
  double t=now(); unsigned long sum=0;
  for(size_t i=0;i<n;i++){
    char*p;
    if(mode==0){ p=malloc(B); for(int k=0;k<4;k++){char*d=p+k*(1<<20); uintptr_t a=((uintptr_t)d+4095)&~4095ul, b=((uintptr_t)d+(1<<20))&~4095ul; madvise((void*)a,b-a,MADV_POPULATE_WRITE); memcpy(d,src,1<<20);} }
    else { int fd=memfd_create("buf",0); ftruncate(fd,B); for(int k=0;k<4;k++) pwrite(fd,src,1<<20,k<<20); p=mmap(0,B,PROT_READ,MAP_SHARED|(mode==2?MAP_POPULATE:0),fd,0); close(fd);} 
    for(size_t j=0;j<B;j+=64) sum+=p[j];
  }
  printf("mode=%d: %.3f s (%lu)\n",mode,now()-t,sum&1);
}
