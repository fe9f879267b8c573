import os, sys, time
p = sys.argv[1] + "/x"
open(p, "w").close()
os.setxattr(p, "user.k", b"v")
for _ in range(2000): os.getxattr(p, "user.k")
n = 30000; t = time.perf_counter()
for _ in range(n): os.getxattr(p, "user.k")
print(f"{(time.perf_counter()-t)/n*1e6:.1f} us per getxattr")
