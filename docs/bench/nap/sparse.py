# sparse.py DIR GAP N: writes and closes N files of 8 KiB of random bytes, GAP seconds apart.
import os, sys, time
d, gap, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    with open(f"{d}/f{i}", "wb") as f:
        f.write(os.urandom(8192))
    time.sleep(gap)
