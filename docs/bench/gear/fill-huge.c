/* Fills 1 GiB of new memory in 4 MiB buffers with 1 MiB copies: ./a.out HUGE POPULATE (0/1 each). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <stdint.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int huge=atoi(argv[1]); int populate=atoi(argv[2]);
  size_t B=4<<20, total=1ul<<30, n=total/B;
  char *src=malloc(1<<20); memset(src,7,1<<20);
  double t=now();
  for(size_t i=0;i<n;i++){
    char*p=aligned_alloc(2<<20,B);
    uintptr_t s=((uintptr_t)p+(2<<20)-1)&~((uintptr_t)(2<<20)-1);
    uintptr_t e=((uintptr_t)p+B)&~((uintptr_t)(2<<20)-1);
    if(huge && e>s) madvise((void*)s,e-s,MADV_HUGEPAGE);
    for(int k=0;k<4;k++){
      char*d=p+k*(1<<20);
      if(populate){uintptr_t a=((uintptr_t)d+4095)&~4095ul, b=((uintptr_t)d+(1<<20))&~4095ul; madvise((void*)a,b-a,MADV_POPULATE_WRITE);}
      memcpy(d,src,1<<20);
    }
  }
  double el=now()-t;
  FILE*f=fopen("/proc/self/smaps_rollup","r");char line[256];long ah=0;while(fgets(line,256,f)) if(!strncmp(line,"AnonHugePages",13)) sscanf(line+14,"%ld",&ah);
  printf("huge=%d populate=%d: %.3f s, AnonHugePages %ld kB\n",huge,populate,el,ah);
}
